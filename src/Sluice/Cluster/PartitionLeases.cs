using System.Data.Common;
using Sluice.Core;
using Sluice.Core.Metadata;

namespace Sluice.Cluster;

/// <summary>A partition's lease as one worker holds it: the fencing token grows with every new owner.</summary>
public readonly record struct PartitionLease(int Partition, long Token);

/// <summary>One row of the lease table, for status and tests.</summary>
public sealed record PartitionLeaseRow(int Partition, string? Owner, long Token, DateTimeOffset ExpiresAt);

/// <summary>
/// The leases of one partitioned stream's partitions, in the cluster's shared metadata store: a row per partition
/// (owner, fencing token, expiry) and a row per worker reading the stream (its heartbeat). A lease is taken when its
/// partition has no owner or its owner's lease expired, and each taking adds one to the token, so a sink can tell a
/// batch of the current owner from one of an owner that lost the lease while it held the batch (<see cref="Core.Pipeline.BatchFence"/>).
/// Every statement is one atomic upsert or update: two workers taking one partition cannot both succeed.
/// </summary>
public sealed class PartitionLeases
{
    private static readonly string[] Migrations =
    [
        "CREATE TABLE partition_leases (stream TEXT NOT NULL, part INTEGER NOT NULL, owner TEXT, token INTEGER NOT NULL, expires_at TEXT NOT NULL, PRIMARY KEY (stream, part))",
        "CREATE TABLE partition_workers (stream TEXT NOT NULL, worker TEXT NOT NULL, expires_at TEXT NOT NULL, PRIMARY KEY (stream, worker))",
    ];

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;

    /// <param name="stream">The partitioned log (a JetStream stream).</param>
    /// <param name="worker">This worker's id, unique in the cluster.</param>
    /// <param name="partitions">How many partitions the stream has.</param>
    /// <param name="duration">How long a lease (and a worker's heartbeat) lasts unless renewed.</param>
    public PartitionLeases(MetadataStore store, string stream, string worker, int partitions, TimeSpan duration, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (store.Shared is null)
        {
            throw new SluiceException("partition leases need the cluster's shared metadata store (SLUICE_CLUSTER_POSTGRES): leases in one data folder's store would fence nobody");
        }

        _store = store;
        _time = time;
        Stream = stream;
        Worker = worker;
        Partitions = partitions;
        Duration = duration;
        store.Migrate("partition_leases", Migrations);
    }

    /// <summary>How long a lease lasts unless renewed, in seconds (<c>SLUICE_CLUSTER_LEASE</c>, default 15): how long a dead worker's partitions wait for a new owner.</summary>
    public const string DurationVariable = "SLUICE_CLUSTER_LEASE";

    /// <summary>The lease duration from the environment; a wrong value throws naming the variable.</summary>
    public static TimeSpan DurationFrom(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        var text = variable(DurationVariable);
        if (string.IsNullOrWhiteSpace(text)) { return TimeSpan.FromSeconds(15); }
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds is >= 2 and <= 600
            ? TimeSpan.FromSeconds(seconds)
            : throw new SluiceException($"cluster: {DurationVariable}: '{text}' is not a whole number of seconds from 2 to 600");
    }

    public string Stream { get; }

    public string Worker { get; }

    public int Partitions { get; }

    public TimeSpan Duration { get; }

    /// <summary>
    /// The heartbeat: records this worker as alive and extends every lease it still holds. Returns those leases; a
    /// lease it held before and does not get back was taken by another worker after it expired.
    /// </summary>
    public IReadOnlyList<PartitionLease> Renew()
    {
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        c.Execute("INSERT INTO partition_workers(stream, worker, expires_at) VALUES ($s, $w, $e) ON CONFLICT(stream, worker) DO UPDATE SET expires_at = excluded.expires_at",
            tx, ("$s", Stream), ("$w", Worker), ("$e", (now + Duration).Iso()));
        var held = Leases(c, tx, "UPDATE partition_leases SET expires_at = $e WHERE stream = $s AND owner = $w RETURNING part, token",
            ("$s", Stream), ("$w", Worker), ("$e", (now + Duration).Iso()));
        tx.Commit();
        return held;
    }

    /// <summary>Workers whose heartbeat has not expired (this one included once it renewed).</summary>
    public int LiveWorkers()
    {
        using var c = _store.Connect();
        return (int)(c.Scalar<long?>("SELECT count(*) FROM partition_workers WHERE stream = $s AND expires_at > $n", null, ("$s", Stream), ("$n", _time.GetUtcNow().Iso())) ?? 0);
    }

    /// <summary>How many partitions each worker should hold: all of them shared out, the first workers taking one more.</summary>
    public static int FairShare(int partitions, int workers) => (partitions + Math.Max(1, workers) - 1) / Math.Max(1, workers);

    /// <summary>The partitions no worker holds (never leased, released, or their owner's lease expired).</summary>
    public IReadOnlyList<int> Free()
    {
        var taken = Rows().Where(r => r.Owner is not null && r.ExpiresAt > _time.GetUtcNow()).Select(r => r.Partition).ToHashSet();
        return Enumerable.Range(0, Partitions).Where(p => !taken.Contains(p)).ToList();
    }

    /// <summary>Takes the partition's lease if it is free, with the next fencing token; null when another worker holds it.</summary>
    public PartitionLease? TryTake(int partition)
    {
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        var taken = Leases(c, null,
            "INSERT INTO partition_leases AS l (stream, part, owner, token, expires_at) VALUES ($s, $p, $w, 1, $e) " +
            "ON CONFLICT(stream, part) DO UPDATE SET owner = excluded.owner, token = l.token + 1, expires_at = excluded.expires_at " +
            "WHERE l.owner IS NULL OR l.expires_at <= $n RETURNING part, token",
            ("$s", Stream), ("$p", partition), ("$w", Worker), ("$e", (now + Duration).Iso()), ("$n", now.Iso()));
        return taken.Count == 1 ? taken[0] : null;
    }

    /// <summary>
    /// Whether <paramref name="lease"/> is still this worker's, read within <paramref name="tx"/>: its row still names
    /// this worker with the same token. The row is locked for share until the transaction ends, so a take-over (which
    /// updates it) waits for what the transaction writes under the lease. An expired lease nobody took yet still holds:
    /// whoever takes it next gets a higher token only after this commit.
    /// </summary>
    public bool Holds(DbConnection connection, DbTransaction? tx, PartitionLease lease)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var cmd = connection.Command("SELECT token FROM partition_leases WHERE stream = $s AND part = $p AND owner = $w AND token = $t FOR SHARE",
            tx, ("$s", Stream), ("$p", lease.Partition), ("$w", Worker), ("$t", lease.Token));
        using var reader = cmd.ExecuteReader();
        return reader.Read();
    }

    /// <summary>
    /// Whether the lease's row still names this worker with its token (expired or not): asked by a reader whose consumer
    /// was deleted under it before it makes another. A new owner takes the lease (a new token) before it deletes the
    /// last owner's consumer, so a reader whose lease moved on is told so here.
    /// </summary>
    public bool StillNames(PartitionLease lease)
    {
        using var c = _store.Connect();
        return c.Scalar<long?>("SELECT token FROM partition_leases WHERE stream = $s AND part = $p AND owner = $w AND token = $t",
            null, ("$s", Stream), ("$p", lease.Partition), ("$w", Worker), ("$t", lease.Token)) is not null;
    }

    /// <summary>Gives a lease up (its partition's events all acknowledged): another worker may take it at once.</summary>
    public void Release(PartitionLease lease)
    {
        using var c = _store.Connect();
        c.Execute("UPDATE partition_leases SET owner = NULL, expires_at = $n WHERE stream = $s AND part = $p AND owner = $w AND token = $t",
            null, ("$s", Stream), ("$p", lease.Partition), ("$w", Worker), ("$t", lease.Token), ("$n", _time.GetUtcNow().Iso()));
    }

    /// <summary>Stopping: this worker's heartbeat ends now, so the others share its partitions at once instead of after the lease.</summary>
    public void Leave()
    {
        using var c = _store.Connect();
        c.Execute("DELETE FROM partition_workers WHERE stream = $s AND worker = $w", null, ("$s", Stream), ("$w", Worker));
    }

    /// <summary>Every lease row of the stream.</summary>
    public IReadOnlyList<PartitionLeaseRow> Rows()
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT part, owner, token, expires_at FROM partition_leases WHERE stream = $s ORDER BY part", null, ("$s", Stream));
        using var reader = cmd.ExecuteReader();
        var rows = new List<PartitionLeaseRow>();
        while (reader.Read())
        {
            rows.Add(new PartitionLeaseRow(Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), reader.IsDBNull(1) ? null : reader.GetString(1),
                Convert.ToInt64(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture), SqliteExtensions.ParseIso(reader.GetString(3))));
        }

        return rows;
    }

    private static List<PartitionLease> Leases(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(sql, tx, parameters);
        using var reader = cmd.ExecuteReader();
        var leases = new List<PartitionLease>();
        while (reader.Read())
        {
            leases.Add(new PartitionLease(Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture)));
        }

        return leases;
    }
}
