using System.Globalization;
using Sluice.Connectors.Redis;
using StackExchange.Redis;

namespace Sluice.Testing;

/// <summary>
/// The keys of a <c>redis:</c> expectation as rows (<see cref="Columns"/>): <c>key</c> without the case's prefix, the
/// key's <c>type</c>, and per type: a string's <c>value</c>; a hash's <c>field</c> and <c>value</c> per field; a sorted
/// set's member as <c>field</c> and score as <c>value</c>; a set's member as <c>field</c>; a list's index as
/// <c>field</c> and item as <c>value</c>. The server is <c>${REDIS_URL}</c>, as the recipes name it.
/// </summary>
public static class RedisOutput
{
    public static readonly IReadOnlyList<string> Columns = ["key", "type", "field", "value"];

    public static string Url => Environment.GetEnvironmentVariable("REDIS_URL") is { Length: > 0 } url ? url : "redis://127.0.0.1:6379";

    public static async Task<List<Dictionary<string, object?>>> ReadAsync(string prefix, string pattern, CancellationToken ct)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(Url)).ConfigureAwait(false);
        var db = redis.GetDatabase();
        var rows = new List<Dictionary<string, object?>>();
        await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: prefix + pattern).WithCancellation(ct).ConfigureAwait(false))
        {
            var name = ((string)key!)[prefix.Length..];
            Dictionary<string, object?> Row(string type, object? field, object? value) =>
                new(StringComparer.Ordinal) { ["key"] = name, ["type"] = type, ["field"] = field, ["value"] = value };
            switch (await db.KeyTypeAsync(key).ConfigureAwait(false))
            {
                case RedisType.String:
                    rows.Add(Row("string", null, (string?)await db.StringGetAsync(key).ConfigureAwait(false)));
                    break;
                case RedisType.Hash:
                    rows.AddRange((await db.HashGetAllAsync(key).ConfigureAwait(false)).Select(e => Row("hash", (string?)e.Name, (string?)e.Value)));
                    break;
                case RedisType.SortedSet:
                    rows.AddRange((await db.SortedSetRangeByRankWithScoresAsync(key).ConfigureAwait(false)).Select(e => Row("zset", (string?)e.Element, e.Score.ToString(CultureInfo.InvariantCulture))));
                    break;
                case RedisType.Set:
                    rows.AddRange((await db.SetMembersAsync(key).ConfigureAwait(false)).Select(m => Row("set", (string?)m, null)));
                    break;
                case RedisType.List:
                    rows.AddRange((await db.ListRangeAsync(key).ConfigureAwait(false)).Select((v, i) => Row("list", i.ToString(CultureInfo.InvariantCulture), (string?)v)));
                    break;
                default:
                    break; // Expired between the scan and the read.
            }
        }

        return rows;
    }

    /// <summary>Deletes the case's keys: every one under its prefix, which only the case's run made.</summary>
    public static async Task DeleteAsync(string prefix)
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(Url)).ConfigureAwait(false);
        var db = redis.GetDatabase();
        await foreach (var key in redis.GetServers()[0].KeysAsync(pattern: prefix + "*").ConfigureAwait(false))
        {
            await db.KeyDeleteAsync(key).ConfigureAwait(false);
        }
    }
}
