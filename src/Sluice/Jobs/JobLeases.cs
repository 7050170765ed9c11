using System.Data.Common;
using System.Globalization;
using Sluice.Core;
using Sluice.Core.Metadata;

namespace Sluice.Jobs;

/// <summary>A run's hold on its job across a cluster: the run, and the fencing token its writes are checked against.</summary>
public sealed record JobLease(string Job, long RunId, long Token, DateTimeOffset AsOf);

/// <summary>
/// One runner per job at a time across every process sharing a metadata store (a cluster's Postgres schema): a run
/// holds its job's row in <c>job_leases</c> while it goes, renewing it before it expires. A lease taken anew gets a
/// higher token than any before it, and a run's final commit is refused unless its token is still the job's, so a
/// runner that stalled past its lease (a long pause, a network cut) cannot write over the run that replaced it.
/// Expiry is judged by each process's own clock: the clocks of a cluster's machines must agree to well within the
/// lease time (NTP does).
/// </summary>
public sealed class JobLeases
{
    public const string TtlVariable = "SLUICE_CLUSTER_JOB_LEASE";

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE job_leases (
            job TEXT PRIMARY KEY, run_id INTEGER NOT NULL, token INTEGER NOT NULL, holder TEXT NOT NULL, expires_at TEXT NOT NULL);
        CREATE TABLE job_lease_tokens (job TEXT PRIMARY KEY, token INTEGER NOT NULL);
        """,
    ];

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;

    public JobLeases(MetadataStore store, TimeProvider time, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = time;
        Ttl = ttl;
        store.Migrate("jobs.leases", Migrations);
    }

    /// <summary>How long a lease lasts unless renewed; runs renew it every third of that.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>Who holds a lease: this machine and process, for messages and <c>job history</c>.</summary>
    public static string Holder => $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>The lease time from <c>SLUICE_CLUSTER_JOB_LEASE</c> (seconds, default 30), or a message naming the variable.</summary>
    public static TimeSpan TtlFromEnvironment(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        var text = variable(TtlVariable);
        if (string.IsNullOrWhiteSpace(text)) { return TimeSpan.FromSeconds(30); }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds is < 2 or > 3600)
        {
            throw new SluiceException($"cluster: {TtlVariable}: '{text}' is not a whole number of seconds from 2 to 3600 (how long a job's runner may go silent before another worker takes the job over)");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>
    /// Starts the run of a scheduled slot with its lease, once across the cluster (<see cref="JobRunStore.StartOnce"/>):
    /// null when another process claimed the slot, or when a run of the job holds the lease still (the slot is then
    /// skipped, as a single process skips a slot while the previous run goes on).
    /// </summary>
    public JobLease? StartSlot(JobRunStore runs, string job, DateTimeOffset asOf)
    {
        ArgumentNullException.ThrowIfNull(runs);
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        var id = runs.Insert(c, tx, job, asOf, "schedule");
        if (c.Execute("INSERT INTO job_slots(job, as_of, run_id) VALUES ($j, $a, $id) ON CONFLICT(job, as_of) DO NOTHING", tx,
                ("$j", job), ("$a", asOf.Iso()), ("$id", id)) == 0
            || Take(c, tx, job, id) is not { } token)
        {
            tx.Rollback();
            return null;
        }

        tx.Commit();
        return new JobLease(job, id, token, asOf);
    }

    /// <summary>Starts a run with the job's lease, waiting up to <paramref name="wait"/> for the run that holds it (a backfill, <c>job run</c>).</summary>
    public async Task<JobLease> StartAsync(JobRunStore runs, string job, DateTimeOffset asOf, string trigger, TimeSpan wait, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var deadline = _time.GetUtcNow() + wait;
        while (true)
        {
            using (var c = _store.Connect())
            using (var tx = c.BeginTransaction())
            {
                var id = runs.Insert(c, tx, job, asOf, trigger);
                if (Take(c, tx, job, id) is { } token)
                {
                    tx.Commit();
                    return new JobLease(job, id, token, asOf);
                }

                tx.Rollback();
            }

            if (_time.GetUtcNow() >= deadline)
            {
                var holder = HolderOf(job);
                throw new TimeoutException($"{job} is running elsewhere in the cluster ({holder ?? "a run that just ended"}); waited {wait.TotalSeconds:0} s for it. Try again when it has ended (sluice job history {job}).");
            }

            await Task.Delay(TimeSpan.FromSeconds(1), _time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Extends the lease; false when it is no longer this run's (it expired and another run took the job).</summary>
    public bool Renew(JobLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        using var c = _store.Connect();
        return c.Execute("UPDATE job_leases SET expires_at = $e WHERE job = $j AND token = $t", null,
            ("$e", (_time.GetUtcNow() + Ttl).Iso()), ("$j", lease.Job), ("$t", lease.Token)) == 1;
    }

    /// <summary>
    /// Records the run's end and gives up the lease, in one transaction, only while the lease is still this run's:
    /// false (nothing written) when another run took the job over.
    /// </summary>
    public bool Finish(JobLease lease, string status, long? rowsIn, long? rowsOut, string? message)
    {
        ArgumentNullException.ThrowIfNull(lease);
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        if (!Holds(c, tx, lease, lockRow: c is Npgsql.NpgsqlConnection))
        {
            tx.Rollback();
            return false;
        }

        c.Execute("UPDATE job_runs SET ended_at = $e, status = $s, rows_in = $i, rows_out = $o, message = $m WHERE id = $id", tx,
            ("$e", _time.GetUtcNow().Iso()), ("$s", status), ("$i", rowsIn), ("$o", rowsOut), ("$m", message), ("$id", lease.RunId));
        c.Execute("DELETE FROM job_leases WHERE job = $j AND token = $t", tx, ("$j", lease.Job), ("$t", lease.Token));
        tx.Commit();
        return true;
    }

    /// <summary>
    /// Holds the lease still while a run commits its output elsewhere (a warehouse): the job's lease row stays locked
    /// until the returned fence is disposed, so no other process can take the job over in between; throws, before
    /// anything is written, when the lease is no longer this run's.
    /// </summary>
    public IDisposable Fence(JobLease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var c = _store.Connect();
        // Postgres locks the one lease row (FOR UPDATE, below); SQLite has no row locks, its write lock stands in.
        var tx = c is Npgsql.NpgsqlConnection ? c.BeginTransaction() : c.BeginWrite();
        try
        {
            // This transaction sits idle by design while the run commits elsewhere, which may take minutes: the shared
            // store's limit on idle transactions (SharedMetadata.IdleInTransactionTimeout) must not end it meanwhile.
            if (c is Npgsql.NpgsqlConnection) { c.Execute("SET LOCAL idle_in_transaction_session_timeout = 0", tx); }
            if (!Holds(c, tx, lease, lockRow: c is Npgsql.NpgsqlConnection))
            {
                throw new JobLeaseLostException(lease);
            }

            return new Held(c, tx);
        }
        catch
        {
            tx.Dispose();
            c.Dispose();
            throw;
        }
    }

    /// <summary>How many times a slot's run or a resumable job's run is re-run after its runner died before it is left interrupted.</summary>
    public const int MaxReruns = 3;

    /// <summary>
    /// Runs whose lease expired (their runner died or was cut off): each marked <c>interrupted</c> by exactly one
    /// process; when it was a scheduled slot's run (a re-run of the slot included) and the job is free, the slot is
    /// re-run by the process that marked it, with a new run and lease returned here (<paramref name="jobs"/>: the jobs
    /// this process can run). So is a run of a job among <paramref name="resumable"/> (it resumes its own progress,
    /// <see cref="Core.Recipes.IResumableJob"/>), whatever started it. At most <see cref="MaxReruns"/> re-runs of a
    /// job's run as of one time: past them the run is left interrupted, its message says so, and
    /// <paramref name="givenUp"/> is told (the run, and how many times it was interrupted).
    /// </summary>
    public IReadOnlyList<JobLease> TakeOverExpired(JobRunStore runs, IReadOnlySet<string> jobs, IReadOnlySet<string>? resumable = null, Action<JobLease, int>? givenUp = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(jobs);
        var now = _time.GetUtcNow().Iso();
        var orphans = new List<(long Id, string Job, string AsOf, string Trigger)>();
        using (var c = _store.Connect())
        using (var cmd = c.Command(
            "SELECT r.id, r.job, r.as_of, r.trigger FROM job_runs r LEFT JOIN job_leases l ON l.run_id = r.id " +
            "WHERE r.status = $running AND (l.job IS NULL OR l.expires_at < $now) ORDER BY r.id", null, ("$running", JobRunStore.Running), ("$now", now)))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) { orphans.Add((r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3))); }
        }

        var reruns = new List<JobLease>();
        foreach (var (id, job, asOfText, trigger) in orphans.Where(o => jobs.Contains(o.Job)))
        {
            using var c = _store.Connect();
            using var tx = c.BeginTransaction();
            // The lease row first: a run committing under its fence (or finishing) holds it, and is waited for; a lease
            // renewed meanwhile is live again and its run is left alone.
            c.Execute("DELETE FROM job_leases WHERE run_id = $id AND expires_at < $now", tx, ("$id", id), ("$now", now));
            if (c.Scalar<long?>("SELECT run_id FROM job_leases WHERE run_id = $id", tx, ("$id", id)) is not null
                || c.Execute("UPDATE job_runs SET status = $i, ended_at = $e, message = $m WHERE id = $id AND status = $running", tx,
                    ("$i", JobRunStore.Interrupted), ("$e", now), ("$m", "its runner stopped renewing the job's lease (the process died or was cut off)"),
                    ("$id", id), ("$running", JobRunStore.Running)) == 0)
            {
                tx.Rollback();
                continue;
            }

            var asOf = SqliteExtensions.ParseIso(asOfText);
            // A re-run of a slot is the slot's run (job_slots points at it), so it is re-run in its turn.
            var slotRun = trigger is "schedule" or "rerun" && c.Scalar<long?>("SELECT run_id FROM job_slots WHERE job = $j AND as_of = $a", tx, ("$j", job), ("$a", asOfText)) == id;
            var resumes = resumable?.Contains(job) == true;
            // Bounded: a run that kills its runner each time (out of memory, a crashing input) must not be re-run for ever,
            // but two deaths in a row (a rolling restart of the workers) must not leave a slot unrun or a backfill half done.
            var rerunsSoFar = slotRun || resumes ? c.Scalar<long>("SELECT count(*) FROM job_runs WHERE job = $j AND as_of = $a AND trigger = 'rerun'", tx, ("$j", job), ("$a", asOfText)) : 0;
            if ((slotRun || resumes) && rerunsSoFar >= MaxReruns)
            {
                c.Execute("UPDATE job_runs SET message = $m WHERE id = $id", tx,
                    ("$m", $"its runner stopped renewing the job's lease (the process died or was cut off); re-run {rerunsSoFar} times already, each interrupted too: not re-run again (run it by hand once the cause is found)"), ("$id", id));
                tx.Commit();
                givenUp?.Invoke(new JobLease(job, id, 0, asOf), (int)rerunsSoFar + 1);
                continue;
            }

            if (slotRun || resumes)
            {
                var rerun = runs.Insert(c, tx, job, asOf, "rerun");
                if (Take(c, tx, job, rerun) is { } token)
                {
                    if (slotRun)
                    {
                        c.Execute("UPDATE job_slots SET run_id = $new WHERE job = $j AND as_of = $a AND run_id = $old", tx,
                            ("$new", rerun), ("$j", job), ("$a", asOfText), ("$old", id));
                    }

                    tx.Commit();
                    reruns.Add(new JobLease(job, rerun, token, asOf));
                    continue;
                }

                // Another run holds the job now (a `job run` took the expired lease): the slot's data is being redone by it.
                c.Execute("DELETE FROM job_runs WHERE id = $id", tx, ("$id", rerun));
            }

            tx.Commit();
        }

        return reruns;
    }

    /// <summary>The holder and run of the job's lease while one is live; null when none is.</summary>
    public string? HolderOf(string job)
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT holder, run_id FROM job_leases WHERE job = $j AND expires_at >= $now", null, ("$j", job), ("$now", _time.GetUtcNow().Iso()));
        using var r = cmd.ExecuteReader();
        return r.Read() ? $"run {r.GetInt64(1)} on {r.GetString(0)}" : null;
    }

    /// <summary>
    /// Takes the job's lease for run <paramref name="runId"/> when it is free or expired, with the next token of the job
    /// (kept apart from the lease row so a released lease does not reset it); null when a live lease holds it.
    /// </summary>
    private long? Take(DbConnection c, DbTransaction tx, string job, long runId)
    {
        var now = _time.GetUtcNow();
        // The token row serialises takers of one job: the second waits on the first's row lock, then sees its lease.
        var token = c.Scalar<long>(
            "INSERT INTO job_lease_tokens(job, token) VALUES ($j, 1) ON CONFLICT(job) DO UPDATE SET token = job_lease_tokens.token + 1 RETURNING token",
            tx, ("$j", job));
        var taken = c.Execute(
            "INSERT INTO job_leases(job, run_id, token, holder, expires_at) VALUES ($j, $r, $t, $h, $e) " +
            "ON CONFLICT(job) DO UPDATE SET run_id = excluded.run_id, token = excluded.token, holder = excluded.holder, expires_at = excluded.expires_at " +
            "WHERE job_leases.expires_at < $now",
            tx, ("$j", job), ("$r", runId), ("$t", token), ("$h", Holder), ("$e", (now + Ttl).Iso()), ("$now", now.Iso()));
        return taken == 1 ? token : null;
    }

    private bool Holds(DbConnection c, DbTransaction tx, JobLease lease, bool lockRow = false) =>
        c.Scalar<long?>("SELECT token FROM job_leases WHERE job = $j AND token = $t AND expires_at >= $now" + (lockRow ? " FOR UPDATE" : ""), tx,
            ("$j", lease.Job), ("$t", lease.Token), ("$now", _time.GetUtcNow().Iso())) is not null;

    private sealed class Held(DbConnection connection, DbTransaction tx) : IDisposable
    {
        public void Dispose()
        {
            tx.Commit();
            tx.Dispose();
            connection.Dispose();
        }
    }
}

/// <summary>A run's lease went to another run (it expired while this one was silent): this run's output is refused.</summary>
public sealed class JobLeaseLostException(JobLease lease)
    : SluiceException($"{lease.Job}: run {lease.RunId} lost the job's lease (token {lease.Token}) to another run, which redoes its work; this run's output was not written");
