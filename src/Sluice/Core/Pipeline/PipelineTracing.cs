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

    /// <summary>
    /// A dropped file of a files pipeline, read and validated (a large file also written and committed within it): the
    /// root of the file's trace, as <see cref="Ingest"/> is of a stream batch's.
    /// </summary>
    public static Activity? File(string recipe, string pipeline, string file, string? type)
    {
        var activity = Source.StartActivity($"file {recipe}/{pipeline}", ActivityKind.Consumer, parentContext: default);
        if (activity is not null)
        {
            activity.SetTag("sluice.recipe", recipe);
            activity.SetTag("sluice.pipeline", pipeline);
            activity.SetTag("sluice.file", file);
            activity.SetTag("sluice.file.type", type);
        }

        return activity;
    }

    /// <summary>What reading the file gave: its rows, the bad ones, and why it is refused (the span's error) when it is.</summary>
    public static void FileRead(Activity? activity, long rows, long badRows, string? refused)
    {
        if (activity is null) { return; }
        activity.SetTag("sluice.batch.rows", rows);
        activity.SetTag("sluice.file.bad_rows", badRows);
        if (refused is not null) { activity.SetStatus(ActivityStatusCode.Error, refused); }
    }

    /// <summary>
    /// A commit of files into the lake (small files commit in groups): a child of the first file's span and linked to
    /// every file's, as a sink that joins stream batches is.
    /// </summary>
    public static Activity? Commit(string recipe, string pipeline, string sink, string table, IReadOnlyList<ActivityContext> files, long rows)
    {
        if (files.Count == 0) { return null; }
        var activity = Source.StartActivity(ActivityKind.Producer, files[0], tags: null, files.Select(c => new ActivityLink(c)), name: $"sink {sink}");
        if (activity is not null)
        {
            activity.SetTag("sluice.recipe", recipe);
            activity.SetTag("sluice.pipeline", pipeline);
            activity.SetTag("sluice.sink", sink);
            activity.SetTag("sluice.files", files.Count);
            activity.SetTag("sluice.batch.rows", rows);
            activity.SetTag("sluice.batch.tables", table);
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
