using System.Diagnostics;

namespace Sluice.Core.Pipeline;

/// <summary>
/// The engine's trace spans, one per batch per stage: <c>ingest</c> (a batch taken from its source, through the steps,
/// handed to every sink), <c>step</c> (each step, a child of ingest) and <c>sink</c> (each sink's commit: a child of
/// the first batch it writes and linked to every batch it writes, since a sink may join several into one write). The
/// batch carries its ingest span's context (<see cref="RecordBatch.Trace"/>) to the sink workers. With no listener
/// (no <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>) <see cref="ActivitySource.StartActivity(string, ActivityKind)"/> returns
/// null and nothing is allocated.
/// </summary>
public static class PipelineTracing
{
    public const string SourceName = "Sluice.Pipeline";

    public static readonly ActivitySource Source = new(SourceName, typeof(PipelineTracing).Assembly.GetName().Version?.ToString());

    public static Activity? Ingest(string recipe, string pipeline, RecordBatch batch)
    {
        var activity = Source.StartActivity($"ingest {recipe}/{pipeline}", ActivityKind.Consumer, parentContext: default);
        if (activity is not null)
        {
            activity.SetTag("sluice.recipe", recipe);
            activity.SetTag("sluice.pipeline", pipeline);
            Batch(activity, batch);
        }

        return activity;
    }

    public static Activity? Step(string recipe, string pipeline, int index, IBatchStep step, ActivityContext ingest)
    {
        if (ingest == default) { return null; }
        var activity = Source.StartActivity($"step {step.GetType().Name}", ActivityKind.Internal, ingest);
        activity?.SetTag("sluice.recipe", recipe);
        activity?.SetTag("sluice.pipeline", pipeline);
        activity?.SetTag("sluice.step.index", index);
        activity?.SetTag("sluice.step", step.GetType().Name);
        return activity;
    }

    /// <param name="written">The ingest contexts of every batch the write holds (one, or several joined).</param>
    public static Activity? Sink(string recipe, string pipeline, IBatchSink sink, RecordBatch batch, IReadOnlyList<ActivityContext> written)
    {
        if (written.Count == 0) { return null; }
        var links = written.Select(c => new ActivityLink(c));
        var activity = Source.StartActivity(ActivityKind.Producer, written[0], tags: null, links, name: $"sink {sink.Name}");
        if (activity is not null)
        {
            activity.SetTag("sluice.recipe", recipe);
            activity.SetTag("sluice.pipeline", pipeline);
            activity.SetTag("sluice.sink", sink.Name);
            activity.SetTag("sluice.batches", written.Count);
            Batch(activity, batch);
        }

        return activity;
    }

    public static void Failed(Activity? activity, Exception e)
    {
        activity?.SetStatus(ActivityStatusCode.Error, ComponentFailedException.ReasonOf(e));
    }

    private static void Batch(Activity activity, RecordBatch batch)
    {
        activity.SetTag("sluice.batch.rows", batch.Count);
        activity.SetTag("sluice.batch.position", batch.Position);
        activity.SetTag("sluice.batch.tables", string.Join(",", batch.Tables.Select(t => t.Schema.Table)));
    }
}
