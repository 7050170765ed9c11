using Microsoft.Extensions.Logging;
using Npgsql;
using Sluice.Core;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Takes the incremental snapshots asked of this source while it streams (DBLog / Debezium's incremental snapshot,
/// docs/CDC.md "Snapshots on demand"): it polls the requests (<see cref="PgSnapshotProgress"/>) and reads each table in
/// chunks by key, one chunk at a time. For each chunk: a low watermark into the WAL, the chunk's SELECT, a high
/// watermark; the change reader places the chunk in the stream at the high watermark, without the keys the stream
/// changed in between (<see cref="PgChunkWindow"/>). Once every sink has committed the batch holding the chunk, its last
/// key is recorded, so a SIGKILL costs at most the chunk in flight. It reads up to the greatest key at its start
/// (<see cref="PgChunkQuery.LastKeyAsync"/>): what is inserted later reaches the sinks through the stream.
/// </summary>
/// <remarks>
/// Each chunk's rows carry the snapshot's name (<paramref name="name"/>, <see cref="PgSnapshotNames"/>): a chunk read again
/// after a crash is named as the first time, whatever position it enters the stream at.
/// </remarks>
internal sealed class PgIncrementalSnapshot(
    PostgresCdcOptions options, IReadOnlyList<CdcTable> tables, PgSnapshotProgress progress, PgChangeReader reader, PgSnapshotReader chunks, ILogger log, TimeProvider time,
    Func<SnapshotRequest, string> name)
{
    /// <summary>The prefix of the watermark messages (content: <c>low &lt;token&gt;</c> or <c>high &lt;token&gt;</c>).</summary>
    public const string WatermarkPrefix = "sluice.snapshot";

    /// <summary>Reached right after a chunk's progress is recorded (tests SIGKILL there, <see cref="CrashPoint"/>).</summary>
    public const string ChunkRecorded = "postgres_cdc.snapshot-chunk-recorded";

    /// <summary>How often the requests are looked at when none is running.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    private long _acked;
    private TaskCompletionSource _ackSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Every sink committed up to <paramref name="position"/>.</summary>
    public void Acknowledged(long position)
    {
        long seen;
        do
        {
            seen = Volatile.Read(ref _acked);
            if (position <= seen) { return; }
        }
        while (Interlocked.CompareExchange(ref _acked, position, seen) != seen);
        Interlocked.Exchange(ref _ackSignal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var database = options.Connection.Database;
        while (!ct.IsCancellationRequested)
        {
            if (progress.Next(options.Slot, database) is not { } request)
            {
                await Task.Delay(PollInterval, time, ct).ConfigureAwait(false);
                continue;
            }

            try
            {
                await TakeAsync(request, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SluiceException || (e is PostgresException p && !PgFailures.IsTransient(p)))
            {
                var why = e is PostgresException pg ? $"Postgres: {pg.MessageText}" : e.Message;
                progress.Fail(request.Id, why);
                PostgresLog.SnapshotFailed(log, request.Id, request.Display, why);
            }
            finally
            {
                if (reader.Window is { } open) { open.Abandon(); }
                reader.Window = null;
            }
        }
    }

    private async Task TakeAsync(SnapshotRequest request, CancellationToken ct)
    {
        var table = tables.FirstOrDefault(t => t.Schema == request.Schema && t.Name == request.Table)
            ?? throw new SluiceException($"table {request.Display} is no longer one of pipeline '{request.Pipeline}''s tables (its recipe changed)");
        await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-incremental"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        var query = await PgChunkQuery.CreateAsync(connection, table, request.Where, request.ChunkRows, ct).ConfigureAwait(false);
        var total = request.Total ?? await CountAsync(connection, table, request.Where, ct).ConfigureAwait(false);
        progress.Started(request.Id, total);
        if (request.Status == PgSnapshotProgress.Queued) { PostgresLog.SnapshotStarted(log, request.Id, request.Display, request.Kind, total, request.ChunkRows); }
        else { PostgresLog.SnapshotResumed(log, request.Id, request.Display, request.LastKey ?? "the start", request.RowsRead); }

        var lastKey = request.LastKey;
        var snapshot = name(request);
        var untilKey = await query.LastKeyAsync(connection, ct).ConfigureAwait(false);
        for (var chunk = request.Chunks + 1; ; chunk++)
        {
            var window = new PgChunkWindow($"{request.Id}.{chunk}.{Guid.NewGuid():N}", table) { Snapshot = snapshot };
            reader.Window = window;
            await EmitAsync(connection, $"low {window.Token}", ct).ConfigureAwait(false);
            var rows = untilKey is null ? null
                : await chunks.ReadChunkAsync(connection, query, lastKey, untilKey, $"incremental snapshot {request.Id} chunk {chunk}", ct).ConfigureAwait(false);
            if (rows is null || rows.Read == 0)
            {
                reader.Window = null;
                progress.Finished(request.Id);
                var done = progress.Get(request.Id)!;
                PostgresLog.SnapshotDone(log, request.Id, request.Display, done.RowsRead, done.Chunks, done.Superseded);
                return;
            }

            window.Fill(rows.Rows, rows.Keys);
            await EmitAsync(connection, $"high {window.Token}", ct).ConfigureAwait(false);
            if (await window.Placement.WaitAsync(ct).ConfigureAwait(false) is not { } placed)
            {
                // Too many changes of the table while the chunk was read: read it again.
                chunk--;
                continue;
            }

            if (placed.Emitted > 0) { await AckedAsync(placed.Position, ct).ConfigureAwait(false); }
            progress.ChunkDone(request.Id, rows.LastKey!, rows.Read, placed.Emitted, placed.Superseded);
            CrashPoint.Reach(ChunkRecorded);
            lastKey = rows.LastKey;
        }
    }

    private async Task AckedAsync(long position, CancellationToken ct)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _ackSignal);
            if (Volatile.Read(ref _acked) >= position) { return; }
            await signal.Task.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    private static async Task EmitAsync(NpgsqlConnection connection, string content, CancellationToken ct)
    {
        // Not transactional: the message is in the stream where it was written, between the transactions around it.
        await using var cmd = new NpgsqlCommand($"SELECT pg_logical_emit_message(false, '{WatermarkPrefix}', $1)", connection);
        cmd.Parameters.AddWithValue(content);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Rows the snapshot will read: the progress bar's end.</summary>
    public static async Task<long> CountAsync(NpgsqlConnection connection, CdcTable table, string? where, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table.Sql}{(where is null ? "" : $" WHERE ({where})")}", connection);
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }
}
