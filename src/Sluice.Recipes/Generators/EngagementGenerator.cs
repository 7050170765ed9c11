using System.Diagnostics;
using Npgsql;
using Sluice.Connectors.Postgres;

namespace Sluice.Recipes.Generators;

/// <summary>Options of <see cref="EngagementGenerator"/>.</summary>
public sealed class EngagementGeneratorOptions
{
    /// <summary>Inserts per second (0: as fast as the server takes them).</summary>
    public double Rate { get; init; } = 100;

    /// <summary>How long to insert (null: until cancelled).</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>Stop after this many inserts (null: no limit).</summary>
    public long? Limit { get; init; }

    /// <summary>Rows per INSERT statement at most (default 500); each statement is one transaction.</summary>
    public int RowsPerStatement { get; init; } = 500;

    /// <summary>Share of events with a content id the catalogue does not have (default 0.01).</summary>
    public double UnknownContentRatio { get; init; } = 0.01;

    /// <summary>Share of events without a duration (default 0.02).</summary>
    public double NullDurationRatio { get; init; } = 0.02;

    public int? Seed { get; init; }
}

/// <summary>
/// The engagement-cdc sample data: <see cref="SetupAsync"/> applies the recipe's <c>schema.sql</c> and seeds the
/// content catalogue (including a length of 0 and a missing length, which the enrichment must survive);
/// <see cref="RunAsync"/> inserts events at a steady rate, several rows per statement via <c>unnest</c>.
/// </summary>
public sealed class EngagementGenerator(PostgresConnectionOptions connection)
{
    /// <summary>Content ids 1..20 have a normal length, 21 has length 0, 22 has no length.</summary>
    public const int ContentRows = 22;

    /// <summary>A content id that is never in the catalogue.</summary>
    public const long UnknownContentId = 999_999;

    private static readonly string[] Types = ["video", "article", "podcast"];
    private static readonly string[] EventTypes = ["play", "pause", "finish", "click"];
    private static readonly string[] Devices = ["web", "ios", "android", "tv"];

    public async Task SetupAsync(string schemaSql, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await using var db = new NpgsqlConnection(connection.ConnectionString("sluice-generate"));
        await db.OpenAsync(ct).ConfigureAwait(false);
        await using (var schema = new NpgsqlCommand(await File.ReadAllTextAsync(schemaSql, ct).ConfigureAwait(false), db))
        {
            await schema.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        var ids = Enumerable.Range(1, ContentRows).Select(i => (long)i).ToArray();
        var types = ids.Select(i => Types[i % Types.Length]).ToArray();
        var lengths = ids.Select(i => i == 21 ? 0 : i == 22 ? (int?)null : (int)(60 * i)).ToArray();
        var titles = ids.Select(i => $"Content {i}").ToArray();
        await using var seed = new NpgsqlCommand(
            "INSERT INTO public.content (content_id, content_type, length_seconds, title) SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[]) ON CONFLICT (content_id) DO NOTHING", db);
        seed.Parameters.AddWithValue(ids);
        seed.Parameters.AddWithValue(types);
        seed.Parameters.AddWithValue(lengths);
        seed.Parameters.AddWithValue(titles);
        await seed.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Inserts events until the duration, the limit or cancellation; reports the total each second.</summary>
    public async Task<long> RunAsync(EngagementGeneratorOptions options, Action<long, double>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var random = options.Seed is { } s ? new Random(s) : new Random();
        await using var db = new NpgsqlConnection(connection.ConnectionString("sluice-generate"));
        await db.OpenAsync(ct).ConfigureAwait(false);
        await using var insert = new NpgsqlCommand(
            "INSERT INTO public.engagement_events (content_id, user_id, event_type, duration_ms, device) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::text[])", db);
        foreach (var type in new[] { NpgsqlTypes.NpgsqlDbType.Bigint, NpgsqlTypes.NpgsqlDbType.Bigint, NpgsqlTypes.NpgsqlDbType.Text, NpgsqlTypes.NpgsqlDbType.Integer, NpgsqlTypes.NpgsqlDbType.Text })
        {
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | type });
        }
        await insert.PrepareAsync(ct).ConfigureAwait(false);

        var clock = Stopwatch.StartNew();
        long total = 0;
        var reported = 0L;
        while (!ct.IsCancellationRequested)
        {
            var elapsed = clock.Elapsed;
            if (options.Duration is { } d && elapsed >= d) { break; }
            if (options.Limit is { } l && total >= l) { break; }
            var due = options.Rate <= 0 ? options.RowsPerStatement : (long)(elapsed.TotalSeconds * options.Rate) - total;
            if (options.Limit is { } limit) { due = Math.Min(due, limit - total); }
            if (due <= 0)
            {
                try { await Task.Delay(TimeSpan.FromMilliseconds(2), ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
                continue;
            }

            var n = (int)Math.Min(due, options.RowsPerStatement);
            var content = new long?[n];
            var users = new long[n];
            var events = new string[n];
            var durations = new int?[n];
            var devices = new string[n];
            for (var i = 0; i < n; i++)
            {
                content[i] = random.NextDouble() < options.UnknownContentRatio ? UnknownContentId : random.Next(1, ContentRows + 1);
                users[i] = random.Next(1, 10_000);
                events[i] = EventTypes[random.Next(EventTypes.Length)];
                durations[i] = random.NextDouble() < options.NullDurationRatio ? null : random.Next(500, 600_000);
                devices[i] = Devices[random.Next(Devices.Length)];
            }

            insert.Parameters[0].Value = content;
            insert.Parameters[1].Value = users;
            insert.Parameters[2].Value = events;
            insert.Parameters[3].Value = durations;
            insert.Parameters[4].Value = devices;
            try
            {
                await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            total += n;
            var second = (long)clock.Elapsed.TotalSeconds;
            if (second > reported)
            {
                reported = second;
                progress?.Invoke(total, total / clock.Elapsed.TotalSeconds);
            }
        }

        return total;
    }
}
