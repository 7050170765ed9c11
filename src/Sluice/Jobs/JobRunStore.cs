using System.Diagnostics;
using Sluice.Core.Metadata;

namespace Sluice.Jobs;

/// <summary>One recorded run of a job (<c>sluice job history</c>).</summary>
public sealed record JobRun(
    long Id, string Job, DateTimeOffset AsOf, string Trigger, DateTimeOffset StartedAt, DateTimeOffset? EndedAt,
    string Status, long? RowsIn, long? RowsOut, string? Message);

/// <summary>
/// Job runs in the metadata store: started, then succeeded or failed. A run whose process died shows as interrupted;
/// a run started on another machine (a cluster's shared store) cannot be checked from here and shows as it is.
/// </summary>
public sealed class JobRunStore
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Interrupted = "interrupted";

    private static readonly string[] Migrations =
    [
        // Which machine a run's pid belongs to; and the claims of scheduled slots (StartOnce), one run per job and time.
        """
        ALTER TABLE job_runs ADD COLUMN host TEXT NULL;
        CREATE TABLE job_slots (job TEXT NOT NULL, as_of TEXT NOT NULL, run_id INTEGER NOT NULL, PRIMARY KEY (job, as_of));
        """,
    ];

    private readonly MetadataStore store;
    private readonly TimeProvider time;

    public JobRunStore(MetadataStore store, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        this.store = store;
        this.time = time;
        store.Migrate("jobs.runs", Migrations);
    }

    public long Start(string job, DateTimeOffset asOf, string trigger)
    {
        using var c = store.Connect();
        return Insert(c, null, job, asOf, trigger);
    }

    /// <summary>
    /// Starts the run of a job's slot (<paramref name="asOf"/>) unless a run of that slot was started already, by this
    /// process or any other sharing the store: the claim and the run are one transaction, so of several processes that
    /// fire the same schedule exactly one gets an id; the others get null and leave the slot alone.
    /// </summary>
    public long? StartOnce(string job, DateTimeOffset asOf, string trigger)
    {
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        var id = Insert(c, tx, job, asOf, trigger);
        if (c.Execute("INSERT INTO job_slots(job, as_of, run_id) VALUES ($j, $a, $id) ON CONFLICT(job, as_of) DO NOTHING", tx,
                ("$j", job), ("$a", asOf.Iso()), ("$id", id)) == 0)
        {
            tx.Rollback();
            return null;
        }

        tx.Commit();
        return id;
    }

    internal long Insert(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction? tx, string job, DateTimeOffset asOf, string trigger) =>
        c.Scalar<long>(
            "INSERT INTO job_runs(job, as_of, trigger, started_at, status, pid, host) VALUES ($j, $a, $t, $s, $st, $p, $h) RETURNING id",
            tx, ("$j", job), ("$a", asOf.Iso()), ("$t", trigger), ("$s", time.GetUtcNow().Iso()), ("$st", Running), ("$p", Environment.ProcessId),
            ("$h", Environment.MachineName));

    public void Finish(long id, string status, long? rowsIn, long? rowsOut, string? message)
    {
        using var c = store.Connect();
        c.Execute(
            "UPDATE job_runs SET ended_at = $e, status = $s, rows_in = $i, rows_out = $o, message = $m WHERE id = $id",
            null, ("$e", time.GetUtcNow().Iso()), ("$s", status), ("$i", rowsIn), ("$o", rowsOut), ("$m", message), ("$id", id));
    }

    /// <summary>The newest runs of a job and of everything under it (a recipe's jobs, a models job's models), newest first.</summary>
    public IReadOnlyList<JobRun> History(string? job = null, int limit = 20) => Read("(CAST($j AS TEXT) IS NULL OR job = $j OR job LIKE $j || '/%')", job, limit);

    /// <summary>The newest runs of exactly this job (<c>recipe/job</c>, or <c>recipe/job/model</c> for a model), newest first.</summary>
    public IReadOnlyList<JobRun> Runs(string job, int limit) => Read("job = $j", job, limit);

    private List<JobRun> Read(string where, string? job, int limit)
    {
        using var c = store.Connect();
        using var cmd = c.Command(
            "SELECT id, job, as_of, trigger, started_at, ended_at, status, rows_in, rows_out, message, pid, host FROM job_runs " +
            $"WHERE {where} ORDER BY id DESC LIMIT $l", null, ("$j", job), ("$l", limit));
        using var r = cmd.ExecuteReader();
        var runs = new List<JobRun>();
        while (r.Read())
        {
            var status = r.GetString(6);
            if (status == Running && !r.IsDBNull(10) && (r.IsDBNull(11) || r.GetString(11) == Environment.MachineName) && !IsAlive((int)r.GetInt64(10)))
            {
                status = Interrupted;
            }

            runs.Add(new JobRun(
                r.GetInt64(0), r.GetString(1), SqliteExtensions.ParseIso(r.GetString(2)), r.GetString(3), SqliteExtensions.ParseIso(r.GetString(4)),
                r.IsDBNull(5) ? null : SqliteExtensions.ParseIso(r.GetString(5)), status,
                r.IsDBNull(7) ? null : r.GetInt64(7), r.IsDBNull(8) ? null : r.GetInt64(8), r.IsDBNull(9) ? null : r.GetString(9)));
        }

        return runs;
    }

    private static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId)
        {
            return true;
        }

        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
