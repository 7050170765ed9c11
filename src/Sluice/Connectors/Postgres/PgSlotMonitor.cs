using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Recipes;

namespace Sluice.Connectors.Postgres;

/// <summary>The slot as last checked (<see cref="PostgresCdcSource.Slot"/>); lag seconds is 0 when every change read was committed by every sink.</summary>
public sealed record SlotStatus(
    string Slot, long ConfirmedLsn, long LagBytes, double LagSeconds, string WalStatus, long? SafeWalBytes, long? MaxKeepBytes,
    double SecondsSinceMessage, DateTimeOffset CheckedAt);

/// <summary>
/// Watches the slot while the source streams: every <see cref="PostgresCdcOptions.SlotCheckInterval"/> it reads the
/// slot's position and WAL reservation, keeps them as <see cref="Latest"/>, and turns thresholds into logs and health
/// (lag -> degraded; WAL about to be removed -> failing; WAL removed -> <see cref="FatalException"/>, since the slot can
/// no longer give the changes after the pipeline's position). Every <see cref="PostgresCdcOptions.HeartbeatInterval"/>
/// it writes a heartbeat message into this database's WAL, which lets an idle slot advance while other tables are busy.
/// </summary>
internal sealed class PgSlotMonitor(PostgresCdcOptions options, string recipe, IEngineServices services, ILogger log)
{
    public const string HeartbeatPrefix = "sluice.heartbeat";

    private const string Query =
        "SELECT coalesce(confirmed_flush_lsn, '0/0')::text, coalesce(wal_status, ''), safe_wal_size, " +
        "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint, " +
        "(SELECT CASE WHEN setting::bigint < 0 THEN -1 ELSE setting::bigint * 1048576 END FROM pg_settings WHERE name = 'max_slot_wal_keep_size') " +
        "FROM pg_replication_slots WHERE slot_name = $1";

    private readonly string _component = $"{recipe}: slot {options.Slot}";
    private volatile SlotStatus? _latest;
    private string? _lagging;
    private string? _atRisk;

    public SlotStatus? Latest => _latest;

    /// <summary>
    /// Checks and heartbeats until cancelled. Throws <see cref="FatalException"/> for a slot the server invalidated or
    /// that vanished; a failed check (the server away for a moment) is logged and retried at the next one.
    /// </summary>
    public async Task RunAsync(Func<DateTimeOffset?> oldestUndelivered, Func<DateTimeOffset> lastMessageAt, Func<long> committed, CancellationToken ct)
    {
        var tick = options.SlotCheckInterval < options.HeartbeatInterval ? options.SlotCheckInterval : options.HeartbeatInterval;
        var time = services.Time;
        var nextCheck = time.GetUtcNow();
        var nextHeartbeat = time.GetUtcNow() + options.HeartbeatInterval;
        using var timer = new PeriodicTimer(tick, time);
        try
        {
            do
            {
                try
                {
                    await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-monitor"));
                    await connection.OpenAsync(ct).ConfigureAwait(false);
                    var now = time.GetUtcNow();
                    if (now >= nextHeartbeat)
                    {
                        await using var beat = new NpgsqlCommand($"SELECT pg_logical_emit_message(false, '{HeartbeatPrefix}', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))", connection);
                        await beat.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                        nextHeartbeat = now + options.HeartbeatInterval;
                    }

                    if (now >= nextCheck)
                    {
                        await CheckAsync(connection, oldestUndelivered(), lastMessageAt(), committed(), ct).ConfigureAwait(false);
                        nextCheck = now + options.SlotCheckInterval;
                    }
                }
                catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException && !ct.IsCancellationRequested)
                {
                    PostgresLog.SlotCheckFailed(log, options.Slot, e.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false));
        }
        finally
        {
            // Stopped or restarting: the next run reports afresh.
            services.Health.Clear(_component);
        }
    }

    private async Task CheckAsync(NpgsqlConnection connection, DateTimeOffset? oldest, DateTimeOffset lastMessage, long committed, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(Query, connection);
        cmd.Parameters.AddWithValue(options.Slot);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false))
        {
            throw new FatalException($"postgres_cdc: replication slot '{options.Slot}' vanished while streaming (dropped by someone?); this pipeline committed changes up to {PgCdcState.Lsn(committed)} and the changes after it cannot be read from a new slot. Use a new data folder or slot name to start over with a snapshot.");
        }

        var now = services.Time.GetUtcNow();
        var status = new SlotStatus(
            options.Slot, PgCdcState.Parse(r.GetString(0)), Math.Max(0, r.GetInt64(3)),
            oldest is { } o ? Math.Max(0, (now - o).TotalSeconds) : 0, r.GetString(1),
            r.IsDBNull(2) ? null : r.GetInt64(2), r.IsDBNull(4) || r.GetInt64(4) < 0 ? null : r.GetInt64(4),
            Math.Max(0, (now - lastMessage).TotalSeconds), now);
        _latest = status;
        if (status.WalStatus == "lost")
        {
            throw new FatalException(
                $"postgres_cdc: replication slot '{options.Slot}' was invalidated by the server (wal_status 'lost'): it held back more WAL than max_slot_wal_keep_size " +
                $"({Bytes(status.MaxKeepBytes)}) and the server removed WAL it still needed. This pipeline committed changes up to {PgCdcState.Lsn(committed)}; " +
                "the changes after it cannot be read from this slot, and none were skipped. Use a new data folder or slot name to start over with a snapshot (and raise max_slot_wal_keep_size, or keep the sinks up).");
        }

        Report(status);
    }

    private void Report(SlotStatus s)
    {
        var lagging = new List<string>();
        if (s.LagBytes >= options.LagWarnBytes) { lagging.Add($"holds back {Bytes(s.LagBytes)} of WAL (lag_warn_bytes {Bytes(options.LagWarnBytes)})"); }
        if (s.LagSeconds >= options.LagWarnSeconds) { lagging.Add($"the oldest change not yet in every sink is {s.LagSeconds:0.#} s old (lag_warn_seconds {options.LagWarnSeconds.ToString(CultureInfo.InvariantCulture)})"); }
        var lagReason = lagging.Count == 0 ? null : $"replication slot '{options.Slot}' " + string.Join(" and ", lagging);

        string? risk = null;
        if (s.WalStatus == "unreserved")
        {
            risk = $"replication slot '{options.Slot}' has wal_status 'unreserved': it holds back more than max_slot_wal_keep_size ({Bytes(s.MaxKeepBytes)}) and the server will invalidate it at the next checkpoint unless the sinks catch up";
        }
        else if (s.MaxKeepBytes is { } max && s.SafeWalBytes is { } safe && safe < max * options.WalErrorFraction)
        {
            risk = $"replication slot '{options.Slot}' can fall only {Bytes(safe)} further behind before max_slot_wal_keep_size ({Bytes(max)}) invalidates it (wal_error_fraction {options.WalErrorFraction.ToString(CultureInfo.InvariantCulture)})";
        }

        if (lagReason is not null && _lagging is null) { PostgresLog.SlotLagging(log, options.Slot, lagReason); }
        if (lagReason is null && _lagging is not null) { PostgresLog.SlotLagCleared(log, options.Slot, s.LagBytes, s.LagSeconds); }
        if (risk is not null && _atRisk is null) { PostgresLog.SlotWalAtRisk(log, options.Slot, risk); }
        if (risk is null && _atRisk is not null) { PostgresLog.SlotWalSafe(log, options.Slot, s.WalStatus); }
        _lagging = lagReason;
        _atRisk = risk;
        services.Health.Report(_component, risk, lagReason);
    }

    private static string Bytes(long? bytes) => bytes is { } b ? $"{b.ToString(CultureInfo.InvariantCulture)} bytes" : "unlimited";
}
