using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.Files;

/// <summary>
/// Who ingests which file of a drop folder several workers watch (a cluster's shared folder): a claim row per file in
/// the shared metadata store (table <c>file_claims</c>) naming the worker and a lease the worker renews while it works.
/// A worker takes a file only after its claim row is written (an upsert that succeeds only where no live lease is), and
/// only then renames it into processing/; a claim whose lease ran out (its worker died or hangs) is taken over by the
/// next worker that looks, which ingests the file again from the start. The rename alone cannot tell a live claimant
/// from a dead one; the lease can, and it needs nothing of the folder but the renames a shared folder already gives
/// (an object store later has no atomic rename at all). Exactly once is kept by the ledger, not the lease: a file's
/// ledger entry and its lake rows commit in one transaction that checks the ledger under the store's write lock, so a
/// worker that wakes after its claim was taken over finds the content committed and lands nothing.
/// </summary>
internal sealed class FileClaims
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS file_claims (
            recipe TEXT NOT NULL, file_name TEXT NOT NULL, worker TEXT NOT NULL, lease_until TEXT NOT NULL,
            PRIMARY KEY (recipe, file_name));
        """,
    ];

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;
    private readonly string _recipe;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, byte> _held = new(StringComparer.Ordinal);

    public FileClaims(MetadataStore store, TimeProvider time, string recipe, TimeSpan lease, ILogger log)
    {
        _store = store;
        _time = time;
        _recipe = recipe;
        _log = log;
        Lease = lease;
        store.Migrate("files.claims", Migrations);
    }

    /// <summary>This process among the workers: host, pid and a random part (a pid comes back after a restart).</summary>
    public static string Worker { get; } = string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}")[..^24];

    /// <summary>The worker's registry entry, told each file claimed and let go (<c>status --cluster</c> shows them); null outside a worker.</summary>
    public Sluice.Cluster.WorkerRegistry? Registry { get; init; }

    /// <summary>How long a claim stays this worker's without a renewal.</summary>
    public TimeSpan Lease { get; }

    /// <summary>The files this worker holds now (for status and the renewals).</summary>
    public IReadOnlyCollection<string> Held => _held.Keys.ToList();

    public bool Holds(string name) => _held.ContainsKey(name);

    /// <summary>Claims a file for this worker: true when no other worker holds a live lease on it.</summary>
    public bool TryClaim(string name)
    {
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        var previous = c.Scalar<string>("SELECT worker FROM file_claims WHERE recipe = $r AND file_name = $f", null, ("$r", _recipe), ("$f", name));
        var won = c.Scalar<string>(
            "INSERT INTO file_claims(recipe, file_name, worker, lease_until) VALUES ($r, $f, $w, $u) " +
            "ON CONFLICT(recipe, file_name) DO UPDATE SET worker = excluded.worker, lease_until = excluded.lease_until WHERE file_claims.lease_until < $n " +
            "RETURNING worker",
            null, ("$r", _recipe), ("$f", name), ("$w", Worker), ("$u", (now + Lease).Iso()), ("$n", now.Iso()));
        if (won != Worker)
        {
            return false;
        }

        _held[name] = 0;
        Registry?.Hold("files", name);
        if (previous is not null && previous != Worker)
        {
            FilesLog.ClaimTakenOver(_log, name, previous);
        }

        return true;
    }

    /// <summary>The file reached its outcome (processed/ or failed/): the name is free for the next file of that name.</summary>
    public void Release(string name)
    {
        if (!_held.TryRemove(name, out _))
        {
            return;
        }

        Registry?.Release("files", name);
        using var c = _store.Connect();
        c.Execute("DELETE FROM file_claims WHERE recipe = $r AND file_name = $f AND worker = $w", null, ("$r", _recipe), ("$f", name), ("$w", Worker));
    }

    /// <summary>Renews the leases of the files held, every third of the lease, until <paramref name="ct"/> ends.</summary>
    public async Task KeepAliveAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Lease / 3, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                if (_held.IsEmpty) { continue; }
                try
                {
                    using var c = _store.Connect();
                    c.Execute("UPDATE file_claims SET lease_until = $u WHERE recipe = $r AND worker = $w", null,
                        ("$u", (_time.GetUtcNow() + Lease).Iso()), ("$r", _recipe), ("$w", Worker));
                }
                catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
                {
                    FilesLog.LeaseNotRenewed(_log, e, _held.Count);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopped with the source
        }
    }
}
