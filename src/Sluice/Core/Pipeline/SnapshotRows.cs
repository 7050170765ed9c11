namespace Sluice.Core.Pipeline;

/// <summary>
/// Which snapshot the snapshot rows (<c>_op</c> = r) of a batch's table at one <c>_lsn</c> were read by: a name the
/// source gives each snapshot (a change data capture source: its slot's initial snapshot, or one incremental snapshot
/// request). Read again after a crash, the same rows carry the same name; a later snapshot of the same table, another.
/// A cluster's CDC relay makes its JetStream message ids from it (<c>Connectors/Nats/CdcChangeLog</c>), so a snapshot row
/// published again by the slot's next holder is stored once, and a second snapshot of the table is not taken for the first.
/// </summary>
/// <param name="Table">The batch table's name (<see cref="Schema.TableSchema.Table"/>).</param>
/// <param name="Lsn">The rows' <c>_lsn</c>: where they entered the stream.</param>
/// <param name="Snapshot">The snapshot's name, unique in the source's slot.</param>
public sealed record SnapshotRows(string Table, long Lsn, string Snapshot);
