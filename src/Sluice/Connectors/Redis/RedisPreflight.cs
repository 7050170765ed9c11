using StackExchange.Redis;

namespace Sluice.Connectors.Redis;

/// <summary><c>sluice validate --connect</c>: the Redis server at a sink's <c>url</c> answers a PING (within 3 s, one try).</summary>
internal static class RedisPreflight
{
    public static async Task<IReadOnlyList<string>> CheckAsync(string url, CancellationToken ct)
    {
        var options = RedisUrl.Parse(url);
        options.AbortOnConnectFail = true;
        options.ConnectRetry = 0;
        options.ConnectTimeout = 3000;
        try
        {
            await using var redis = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(ct).ConfigureAwait(false);
            await redis.GetDatabase().PingAsync().WaitAsync(ct).ConfigureAwait(false);
            return [];
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return [$"url: redis at {string.Join(", ", options.EndPoints)} does not answer: {e.Message.Split(". ")[0].TrimEnd('.')}"];
        }
    }
}
