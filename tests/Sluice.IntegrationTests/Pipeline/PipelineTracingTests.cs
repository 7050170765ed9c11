using System.Diagnostics;
using OpenTelemetry.Trace;
using Sluice.Connectors.OpenTelemetry;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Pipeline;

/// <summary>
/// The spans of a stream pipeline: one per batch per stage, ingest -> step -> sink, the sink's linked to every batch it
/// wrote. Tests of this class run one at a time (xunit), so the "off" test sees no listener of the other.
/// </summary>
public sealed class PipelineTracingTests
{
    private static readonly TableSchema Facts = new("facts", [new FieldSpec("id", FieldType.Integer, true)]);

    [Fact]
    public async Task Each_batch_gives_an_ingest_span_with_its_steps_and_every_sink_commit_linked_to_it()
    {
        using var engine = new Engine();
        var exported = new List<Activity>();
        using (var tracing = OtlpTracing.Build(b => b.AddInMemoryExporter(exported)))
        {
            var batches = new[] { new RecordBatch(Ids(1, 2), 10), new RecordBatch(Ids(3), 20), new RecordBatch(Ids(4, 5, 6), 30) };
            var gate = new SemaphoreSlim(0);
            var plain = new RecordingSink("plain", SinkJoining.None, null);
            var joining = new RecordingSink("joining", SinkJoining.Waiting(1_000), gate);
            // Batches 2 and 3 come once the joining sink is held in its first write: it writes them as one.
            var source = new ListSource(batches, before: i => i == 1 ? joining.FirstWrite : Task.CompletedTask);
            await using var pipeline = new StreamPipeline(engine.Services, "traced", "p", source, [new PassStep()], [plain, joining]);
            var run = pipeline.RunOnceAsync(CancellationToken.None);
            await Wait.UntilAsync(() => plain.Writes.Count == 3);
            gate.Release(100);
            await run;
        }

        var mine = exported.Where(a => (string?)a.GetTagItem("sluice.recipe") == "traced").ToList();
        var ingest = mine.Where(a => a.DisplayName == "ingest traced/p").OrderBy(a => (long)a.GetTagItem("sluice.batch.position")!).ToList();
        ingest.Count.ShouldBe(3);
        ingest.Select(a => (int)a.GetTagItem("sluice.batch.rows")!).ShouldBe([2, 1, 3]);
        ingest.ShouldAllBe(a => a.Parent == null && a.ParentSpanId == default);
        ingest.Select(a => a.TraceId).Distinct().Count().ShouldBe(3);

        var steps = mine.Where(a => a.DisplayName == "step PassStep").ToList();
        steps.Count.ShouldBe(3);
        foreach (var i in ingest)
        {
            var step = steps.Single(s => s.ParentSpanId == i.SpanId);
            step.TraceId.ShouldBe(i.TraceId);
            step.GetTagItem("sluice.step.index").ShouldBe(0);
        }

        var plainSpans = mine.Where(a => a.DisplayName == "sink plain").ToList();
        plainSpans.Count.ShouldBe(3);
        foreach (var i in ingest)
        {
            var sink = plainSpans.Single(s => s.ParentSpanId == i.SpanId);
            sink.TraceId.ShouldBe(i.TraceId);
            sink.Links.Select(l => l.Context.SpanId).ShouldBe([i.SpanId]);
            sink.GetTagItem("sluice.sink").ShouldBe("plain");
        }

        var joinedSpans = mine.Where(a => a.DisplayName == "sink joining").OrderBy(a => (long)a.GetTagItem("sluice.batch.position")!).ToList();
        joinedSpans.Count.ShouldBe(2);
        joinedSpans[0].ParentSpanId.ShouldBe(ingest[0].SpanId);
        var joined = joinedSpans[1];
        joined.GetTagItem("sluice.batches").ShouldBe(2);
        joined.GetTagItem("sluice.batch.rows").ShouldBe(4);
        joined.ParentSpanId.ShouldBe(ingest[1].SpanId);
        joined.Links.Select(l => (l.Context.TraceId, l.Context.SpanId)).ShouldBe([(ingest[1].TraceId, ingest[1].SpanId), (ingest[2].TraceId, ingest[2].SpanId)]);
    }

    [Fact]
    public async Task With_tracing_off_no_span_is_started_and_batches_pass_unchanged()
    {
        using var engine = new Engine();
        PipelineTracing.Source.HasListeners().ShouldBeFalse();
        var batches = new[] { new RecordBatch(Ids(1, 2), 10), new RecordBatch(Ids(3), 20) };
        var sink = new RecordingSink("plain", SinkJoining.None, null);
        await using var pipeline = new StreamPipeline(engine.Services, "untraced", "p", new ListSource(batches, _ => Task.CompletedTask), [new PassStep()], [sink]);

        await pipeline.RunOnceAsync(CancellationToken.None);

        // The very batches the source made (no copy to carry a trace context), with no context.
        sink.Writes.Count.ShouldBe(2);
        for (var i = 0; i < 2; i++)
        {
            ReferenceEquals(sink.Writes[i], batches[i]).ShouldBeTrue();
            sink.Writes[i].Trace.ShouldBe(default);
        }
    }

    private static ColumnBatch Ids(params long[] ids) => new(Facts, [ids.Select(i => (long?)i).ToArray()], ids.Length);

    private sealed class PassStep : IBatchStep
    {
        public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct) => ValueTask.FromResult(batch);
    }
}
