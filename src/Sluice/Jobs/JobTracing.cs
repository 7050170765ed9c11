using System.Diagnostics;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;

namespace Sluice.Jobs;

/// <summary>
/// Trace spans of job and model runs, on the pipelines' source (<see cref="PipelineTracing.Source"/>, what the OTLP
/// exporter listens to): one span per run, named <c>job &lt;recipe&gt;/&lt;job&gt;</c> or <c>model &lt;scope&gt;/&lt;model&gt;</c>,
/// with its id in <c>job_runs</c>, the tables it reads and writes, its rows and its outcome. A model run inside a
/// models job is a child of the job's span. With tracing off nothing is allocated.
/// </summary>
public static class JobTracing
{
    public static Activity? Job(JobDefinition job, long runId, JobRequest request)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(request);
        var activity = PipelineTracing.Source.StartActivity($"job {job.FullName}", ActivityKind.Internal);
        if (activity is null) { return null; }
        activity.SetTag("sluice.recipe", job.Recipe);
        activity.SetTag("sluice.job", job.Name);
        activity.SetTag("sluice.job.type", job.Type);
        Run(activity, runId, request.AsOf.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture), request.Trigger);
        if (job.Factory is IWritesLakeTables written) { activity.SetTag("sluice.tables.written", string.Join(",", written.LakeTables)); }
        return activity;
    }

    /// <param name="name">The run's name in <c>job_runs</c>: <c>&lt;recipe&gt;/&lt;job&gt;/&lt;model&gt;</c>.</param>
    public static Activity? Model(string name, long runId, DateOnly asOf, string trigger, IEnumerable<string> read, string written, string engine)
    {
        var activity = PipelineTracing.Source.StartActivity($"model {name}", ActivityKind.Internal);
        if (activity is null) { return null; }
        activity.SetTag("sluice.model", name);
        activity.SetTag("sluice.warehouse", engine);
        Run(activity, runId, asOf.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), trigger);
        activity.SetTag("sluice.tables.read", string.Join(",", read));
        activity.SetTag("sluice.tables.written", written);
        return activity;
    }

    public static void Finished(Activity? activity, long rowsIn, long rowsOut)
    {
        if (activity is null) { return; }
        activity.SetTag("sluice.rows.in", rowsIn);
        activity.SetTag("sluice.rows.out", rowsOut);
        activity.SetTag("sluice.run.status", JobRunStore.Succeeded);
        activity.SetStatus(ActivityStatusCode.Ok);
    }

    /// <param name="status">What <c>job_runs</c> records: failed, or interrupted when cancelled.</param>
    public static void Ended(Activity? activity, string status, string? error)
    {
        if (activity is null) { return; }
        activity.SetTag("sluice.run.status", status);
        activity.SetStatus(ActivityStatusCode.Error, error);
    }

    private static void Run(Activity activity, long runId, string asOf, string trigger)
    {
        activity.SetTag("sluice.run.id", runId);
        activity.SetTag("sluice.run.as_of", asOf);
        activity.SetTag("sluice.run.trigger", trigger);
    }
}
