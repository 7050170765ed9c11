using System.Diagnostics;
using Sluice.Core.Metadata;

namespace Sluice.Jobs;

/// <summary>One recorded run of a job (<c>sluice job history</c>).</summary>
public sealed record JobRun(
    long Id, string Job, DateTimeOffset AsOf, string Trigger, DateTimeOffset StartedAt, DateTimeOffset? EndedAt,
    string Status, long? RowsIn, long? RowsOut, string? Message);

/// <summary>Job runs in the metadata store: started, then succeeded or failed. A run whose process died shows as interrupted.</summary>
public sealed class JobRunStore(MetadataStore store, TimeProvider time)
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Interrupted = "interrupted";

    public long Start(string job, DateTimeOffset asOf, string trigger)
    {
        using var c = store.Open();
        return c.Scalar<long>(
            "INSERT INTO job_runs(job, as_of, trigger, started_at, status, pid) VALUES ($j, $a, $t, $s, $st, $p) RETURNING id",
            null, ("$j", job), ("$a", asOf.Iso()), ("$t", trigger), ("$s", time.GetUtcNow().Iso()), ("$st", Running), ("$p", Environment.ProcessId));
    }

    public void Finish(long id, string status, long? rowsIn, long? rowsOut, string? message)
    {
        using var c = store.Open();
        c.Execute(
            "UPDATE job_runs SET ended_at = $e, status = $s, rows_in = $i, rows_out = $o, message = $m WHERE id = $id",
            null, ("$e", time.GetUtcNow().Iso()), ("$s", status), ("$i", rowsIn), ("$o", rowsOut), ("$m", message), ("$id", id));
    }

    public IReadOnlyList<JobRun> History(string? job = null, int limit = 20, bool exact = false)
    {
        using var c = store.Open();
        using var cmd = c.Command(
            "SELECT id, job, as_of, trigger, started_at, ended_at, status, rows_in, rows_out, message, pid FROM job_runs " +
            "WHERE ($j IS NULL OR job = $j OR ($x = 0 AND job LIKE $j || '/%')) ORDER BY id DESC LIMIT $l", null, ("$j", job), ("$x", exact ? 1 : 0), ("$l", limit));
        using var r = cmd.ExecuteReader();
        var runs = new List<JobRun>();
        while (r.Read())
        {
            var status = r.GetString(6);
            if (status == Running && !r.IsDBNull(10) && !IsAlive(r.GetInt32(10)))
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

    /// <summary>The newest runs of exactly this job (not its models' runs), newest first; a dead process's run shows as interrupted.</summary>
    public IReadOnlyList<JobRun> Recent(string job, int limit = 5) => History(job, limit, exact: true);

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
