using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Creating a logical replication slot returns only once every transaction that had a transaction id when it began
/// has ended, in any database of the server: PostgreSQL needs a point with none of them in flight to start decoding.
/// One transaction left open elsewhere (a session idle in transaction, a process hung mid-COPY) holds the creation,
/// and so the pipeline and its initial snapshot, silently until it ends or the command times out. While the creation
/// waits, this looks every <see cref="LookEvery"/> at the sessions that hold it and names them in a warning, so an
/// operator sees what to end (issue 18: a cluster's slot holder waited 3 minutes on another process's open COPY).
/// </summary>
internal sealed class PgSlotCreationWait(PostgresConnectionOptions connection, string slot, ILogger log, TimeProvider time)
{
    /// <summary>How long the creation may take before the first look (a creation on a quiet server takes milliseconds).</summary>
    public TimeSpan FirstLook { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the look is taken again while the creation still waits.</summary>
    public TimeSpan LookEvery { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Awaits <paramref name="creating"/> (the creation on the replication session of server process <paramref name="walSender"/>), saying what holds it while it waits.</summary>
    public async Task<T> WatchAsync<T>(Task<T> creating, int walSender, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(creating);
        var started = time.GetTimestamp();
        var wait = FirstLook;
        while (true)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var delay = Task.Delay(wait, time, stop.Token);
            if (await Task.WhenAny(creating, delay).ConfigureAwait(false) == creating)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                return await creating.ConfigureAwait(false);
            }

            // Stopping: the creation was given the token too; its own end (cancelled) is the answer, and the replication
            // session is not disposed under a command in flight.
            if (ct.IsCancellationRequested) { return await creating.ConfigureAwait(false); }
            var holders = await HoldersAsync(walSender, ct).ConfigureAwait(false);
            if (holders.Count > 0)
            {
                PostgresLog.SlotCreationWaits(log, slot, (int)time.GetElapsedTime(started).TotalSeconds, string.Join("; ", holders));
            }

            wait = LookEvery;
        }
    }

    /// <summary>The sessions whose transactions the creation waits for, described; none when it waits for no session or the look failed.</summary>
    internal async Task<List<string>> HoldersAsync(int walSender, CancellationToken ct)
    {
        var holders = new List<string>();
        try
        {
            await using var session = new NpgsqlConnection(connection.ConnectionString("sluice-cdc-look"));
            await session.OpenAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand(
                "SELECT pid, coalesce(datname, ''), coalesce(application_name, ''), coalesce(state, ''), " +
                "coalesce(extract(epoch FROM now() - xact_start)::bigint, 0), left(coalesce(query, ''), 80) " +
                "FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids($1)) ORDER BY xact_start", session);
            cmd.Parameters.AddWithValue(walSender);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                holders.Add(string.Create(CultureInfo.InvariantCulture,
                    $"pid {r.GetInt32(0)} (database {r.GetString(1)}, application '{r.GetString(2)}', {r.GetString(3)}, transaction open {r.GetInt64(4)} s, last statement: {r.GetString(5)})"));
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            // Only a diagnosis: the creation goes on waiting either way (or ends with the stop); the next look may answer.
        }

        return holders;
    }
}
