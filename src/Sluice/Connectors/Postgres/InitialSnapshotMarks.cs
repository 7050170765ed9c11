namespace Sluice.Connectors.Postgres;

/// <summary>
/// Where the initial snapshot's batches were in their tables (table, last key, whether the table ended), by position;
/// once every sink has committed a position, its mark is recorded (<see cref="PgSnapshotProgress.InitialProgress"/>), so
/// an interrupted snapshot can go on from there instead of starting over.
/// </summary>
internal sealed class InitialSnapshotMarks(PgSnapshotProgress progress, PostgresCdcOptions options, IReadOnlyList<CdcTable> tables, long consistentPoint)
{
    private readonly Lock _gate = new();
    private readonly Queue<(long Position, int Table, string? LastKey, bool Complete)> _sent = new();

    /// <summary>A batch about to go (called by <see cref="PgSnapshotReader.ReadAsync"/>). Bounded by the snapshot's batch count, itself below <see cref="PgSlotAdmin.SnapshotGap"/>.</summary>
    public void Sent(long position, int table, string? lastKey, bool complete)
    {
        lock (_gate) { _sent.Enqueue((position, table, lastKey, complete)); }
    }

    public void Acknowledged(long position)
    {
        (long Position, int Table, string? LastKey, bool Complete)? latest = null;
        lock (_gate)
        {
            while (_sent.TryPeek(out var mark) && mark.Position <= position) { latest = _sent.Dequeue(); }
        }

        if (latest is not { } m) { return; }
        // A table without a key has no place to go on from: only its end counts.
        var table = tables[m.Table];
        if (table.KeyColumns.Count == 0 && !m.Complete)
        {
            if (m.Table == 0) { return; }
            progress.InitialProgress(options.Slot, options.Connection.Database, consistentPoint, tables, m.Table - 1, null, true);
            return;
        }

        progress.InitialProgress(options.Slot, options.Connection.Database, consistentPoint, tables, m.Table, m.LastKey, m.Complete);
    }
}
