using System.Data.Common;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;

namespace Sluice.Lake;

/// <summary>
/// Which events of a cluster's shared log (a JetStream stream) each lake sink committed (table <c>lake_log_commits</c>:
/// sink, log, runs of sequences). Recorded in the transaction of the files, so the rows and the record of their events
/// are one commit: a batch a dead worker held, given again to another worker, finds its events here and writes none of
/// them twice. Touching runs are joined at every commit, so the table holds about one run per sink and log plus the
/// gaps of batches still in flight, however long the log.
/// </summary>
public sealed class LakeLogCommits
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS lake_log_commits (
            sink TEXT NOT NULL, log TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
            PRIMARY KEY (sink, log, first_seq));
        """,
    ];

    private readonly MetadataStore _store;
    private readonly Lazy<bool> _migrated;

    public LakeLogCommits(MetadataStore store)
    {
        _store = store;
        // As LakeMirrors: a failed migration is tried again by the next call rather than remembered.
        _migrated = new Lazy<bool>(() =>
        {
            store.Migrate("lake_log_commits", Migrations);
            return true;
        }, LazyThreadSafetyMode.PublicationOnly);
    }

    /// <summary>The runs of <paramref name="sequences"/>' log that <paramref name="sink"/> committed and that reach into their span.</summary>
    public IReadOnlyList<SequenceRange> Committed(string sink, LogSequences sequences)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        _ = _migrated.Value;
        if (sequences.Ranges.Count == 0) { return []; }
        using var c = _store.Connect();
        return Read(c, null, sink, sequences.Log, sequences.Ranges[0].First, sequences.Ranges[^1].Last);
    }

    /// <summary>
    /// Records in the caller's write transaction that <paramref name="sink"/> committed <paramref name="sequences"/>.
    /// When another worker committed one of them since it was looked up (the same events in flight on two workers:
    /// an ack wait passed while the first still wrote), throws <see cref="LakeConflictException"/>, and the whole commit
    /// with it: nothing of the batch is written, and the sink looks again.
    /// </summary>
    public void Record(DbConnection connection, DbTransaction tx, string sink, LogSequences sequences)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sequences);
        if (!_migrated.IsValueCreated) { throw new InvalidOperationException("LakeLogCommits.Committed must come before the transaction"); }
        if (sequences.Ranges.Count == 0) { return; }
        var (first, last) = (sequences.Ranges[0].First, sequences.Ranges[^1].Last);
        // One past each end: a run that touches the new ones is joined to them.
        var near = Read(connection, tx, sink, sequences.Log, first - 1, last + 1);
        var fresh = SequenceRange.Except(sequences.Ranges, near);
        if (fresh.Sum(r => r.Count) != sequences.Count)
        {
            throw new LakeConflictException($"lake sink {sink}: {sequences.Count - fresh.Sum(r => r.Count)} events of log {sequences.Log} were committed by another worker meanwhile; nothing was committed");
        }

        foreach (var run in near)
        {
            connection.Execute("DELETE FROM lake_log_commits WHERE sink = $s AND log = $l AND first_seq = $f", tx, ("$s", sink), ("$l", sequences.Log), ("$f", run.First));
        }

        foreach (var run in SequenceRange.Coalesce(near.Concat(sequences.Ranges)))
        {
            connection.Execute("INSERT INTO lake_log_commits(sink, log, first_seq, last_seq) VALUES ($s, $l, $f, $t)", tx,
                ("$s", sink), ("$l", sequences.Log), ("$f", run.First), ("$t", run.Last));
        }
    }

    private static List<SequenceRange> Read(DbConnection c, DbTransaction? tx, string sink, string log, long first, long last)
    {
        using var cmd = c.Command(
            "SELECT first_seq, last_seq FROM lake_log_commits WHERE sink = $s AND log = $l AND last_seq >= $f AND first_seq <= $t ORDER BY first_seq", tx,
            ("$s", sink), ("$l", log), ("$f", first), ("$t", last));
        using var r = cmd.ExecuteReader();
        var runs = new List<SequenceRange>();
        while (r.Read()) { runs.Add(new SequenceRange(r.GetInt64(0), r.GetInt64(1))); }
        return runs;
    }
}
