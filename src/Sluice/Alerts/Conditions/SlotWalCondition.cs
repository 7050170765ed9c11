namespace Sluice.Alerts.Conditions;

/// <summary>
/// <c>slot_wal</c>: fires when a CDC pipeline's replication slot nears the server's WAL limit
/// (<c>max_slot_wal_keep_size</c>): less than <see cref="MinSafeWal"/> bytes may still be written before the slot is
/// invalidated, or <c>wal_status</c> is already <c>unreserved</c> (WAL it needs may go at the next checkpoint) or
/// <c>lost</c>. A server without a limit reports no safe size; only the status counts then.
/// </summary>
public sealed class SlotWalCondition(string pipeline, long minSafeWal) : AlertCondition
{
    public override string Kind => "slot_wal";

    public override string Subject => $"pipeline {pipeline}";

    public override AlertCheck Check(IAlertFacts facts, DateTimeOffset now, DateTimeOffset watchedSince)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.Pipeline(pipeline)?.Slot is not { } slot)
        {
            return new AlertCheck(false, $"pipeline {pipeline}: no slot figures yet");
        }

        var head = $"pipeline {pipeline}: slot {slot.Slot}";
        if (slot.WalStatus is "unreserved" or "lost")
        {
            return new AlertCheck(true, $"{head} has wal_status '{slot.WalStatus}': " + (slot.WalStatus == "lost"
                ? "the WAL it needs is gone; the slot must be re-created and the tables snapshotted again"
                : "the WAL it needs is past max_slot_wal_keep_size and may be removed at the next checkpoint"));
        }

        if (slot.SafeWalBytes is { } safe && safe < minSafeWal)
        {
            return new AlertCheck(true, $"{head}: only {Count(safe)} bytes of WAL may still be written before the slot is invalidated, less than {Count(minSafeWal)}");
        }

        return new AlertCheck(false, $"{head}: wal_status {slot.WalStatus}, " + (slot.SafeWalBytes is { } s ? $"{Count(s)} bytes of WAL to spare" : "no WAL limit"));
    }
}
