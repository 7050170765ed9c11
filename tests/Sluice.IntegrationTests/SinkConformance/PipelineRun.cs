using System.Runtime.CompilerServices;
using Sluice.Core;
using Sluice.Core.Pipeline;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// Runs the real <see cref="StreamPipeline"/> (its queue, joining, checkpoints and replay skipping) from a list of
/// batches into one sink, as a recipe's pipeline would; the sink's checkpoint lives in the fixture's metadata store, so
/// a second run is a restart.
/// </summary>
internal static class PipelineRun
{
    public const string Recipe = "conformance";
    public const string Pipeline = "items";

    /// <summary>Writes <paramref name="batches"/> and returns once every batch is committed (or the run failed: the exception).</summary>
    public static async Task OnceAsync(SinkFixture fixture, IBatchSink sink, IReadOnlyList<RecordBatch> batches, string pipelineName = Pipeline)
    {
        var steps = pipelineName == Pipeline ? fixture.Steps : [];
        await using var pipeline = new StreamPipeline(fixture.Engine.Services, Recipe, pipelineName, new BatchList(batches, null), steps, [sink]);
        await pipeline.RunOnceAsync(CancellationToken.None);
    }

    /// <summary>
    /// Writes the batches, and stops the run (as Ctrl-C does) once the source has handed over the last one and
    /// <paramref name="whenRead"/> completed: what the sink holds then is what a stop's drain wrote.
    /// </summary>
    public static async Task StoppedAsync(SinkFixture fixture, IBatchSink sink, IReadOnlyList<RecordBatch> batches, Func<Task> whenRead)
    {
        using var stop = new CancellationTokenSource();
        var read = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The drain's own bound (10 s) is the host's business: here what matters is what a drain writes, so it gets room
        // for a failing sink's back-off on a loaded machine.
        await using var pipeline = new StreamPipeline(fixture.Engine.Services, Recipe, Pipeline, new BatchList(batches, read), fixture.Steps, [sink]) { Drain = TimeSpan.FromSeconds(50) };
        var run = pipeline.RunAsync(_ => Task.CompletedTask, stop.Token);
        await read.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await whenRead();
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>A sink that dies (as a SIGKILL between its write and its checkpoint would leave it) right after it wrote the batch reaching <paramref name="position"/>.</summary>
    public static IBatchSink CrashingAfter(IBatchSink sink, long position) => new CrashingSink(sink, position);

    private sealed class CrashingSink(IBatchSink inner, long position) : IBatchSink
    {
        public string Name => inner.Name;

        public SinkJoining Joining => inner.Joining;

        public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
        {
            await inner.WriteAsync(batch, checkpointKey, ct);
            if (batch.Position >= position) { throw new SluiceException("conformance: crash after the write, before the checkpoint"); }
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>The batches after the resume position, then (with <paramref name="read"/>) it waits for the stop, as a live source does.</summary>
    private sealed class BatchList(IReadOnlyList<RecordBatch> batches, TaskCompletionSource? read) : IStreamSource
    {
        private int _read;

        public bool CaughtUp => _read == batches.Count;

        public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
        {
            foreach (var batch in batches)
            {
                _read++;
                if (resumeAfter is { } after && batch.Position <= after) { continue; }
                yield return batch;
            }

            if (read is null) { yield break; }
            read.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        }

        public Task AcknowledgeAsync(long position, CancellationToken ct) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
