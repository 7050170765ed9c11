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

    [Fact]
    public async Task A_files_pipeline_traces_each_file_and_each_lake_commit_and_its_job_and_every_model_run_once()
    {
        await using var h = await SalesWarehouse.WarehouseHarness.CreateAsync("duckdb");
        var generate = await SluiceProcess.RunAsync(h.DataRoot, "generate", "sales-warehouse", "--days", "2", "--customers", "50", "--sales-per-day", "100", "--start", "2024-05-01", "--seed", "3");
        generate.Code.ShouldBe(0, generate.Err);
        var dropped = Directory.GetFiles(h.Incoming).Select(Path.GetFileName).ToList();
        dropped.Count.ShouldBeGreaterThan(1);
        var exported = new List<Activity>();
        ActivityTraceId trace;
        // Other test classes may trace at the same time: this test's spans are those under its own root span.
        using var test = new ActivitySource("Sluice.Tests.FilesTracing");
        using (var tracing = OtlpTracing.Build(b => b.AddSource(test.Name).AddInMemoryExporter(exported)))
        {
            using var root = test.StartActivity("test")!;
            trace = root.TraceId;
            await h.RunOnceAsync();
        }

        var mine = exported.Where(a => a.TraceId == trace).ToList();
        var files = mine.Where(a => a.DisplayName == "file sales-warehouse/load").ToList();
        files.Select(f => (string)f.GetTagItem("sluice.file")!).Order(StringComparer.Ordinal).ShouldBe(dropped.Order(StringComparer.Ordinal), "one span per dropped file");
        files.ShouldAllBe(f => (long)f.GetTagItem("sluice.batch.rows")! > 0 && f.Status != ActivityStatusCode.Error);
        var commits = mine.Where(a => a.DisplayName == "sink lake").ToList();
        commits.ShouldNotBeEmpty();
        // Every file is linked from exactly one lake commit, a child of the first file it commits.
        commits.SelectMany(c => c.Links.Select(l => l.Context.SpanId.ToHexString())).Order(StringComparer.Ordinal).ShouldBe(files.Select(f => f.SpanId.ToHexString()).Order(StringComparer.Ordinal));
        commits.ShouldAllBe(c => c.ParentSpanId == c.Links.First().Context.SpanId);
        commits.Sum(c => (long)c.GetTagItem("sluice.batch.rows")!).ShouldBe(files.Sum(f => (long)f.GetTagItem("sluice.batch.rows")!));

        var jobs = mine.Where(a => a.DisplayName == "job sales-warehouse/daily").ToList();
        jobs.ShouldNotBeEmpty();
        jobs.ShouldAllBe(j => (string)j.GetTagItem("sluice.run.status")! == "succeeded" && j.GetTagItem("sluice.run.id") != null);
        var ytd = mine.Where(a => a.DisplayName == "model sales-warehouse/daily/mart.customer_ytd_spending").ToList();
        var runs = new global::Sluice.Jobs.JobRunStore(h.Engine.Services.Metadata, TimeProvider.System);
        jobs.Select(j => (long)j.GetTagItem("sluice.run.id")!).Order().ShouldBe(runs.Runs("sales-warehouse/daily", 100).Select(r => r.Id).Order(), "one span per job run");
        ytd.Select(m => (long)m.GetTagItem("sluice.run.id")!).Order().ShouldBe(runs.Runs("sales-warehouse/daily/mart.customer_ytd_spending", 100).Select(r => r.Id).Order(), "one span per model run");
        foreach (var model in ytd)
        {
            jobs.Select(j => j.SpanId).ShouldContain(model.ParentSpanId, "a model run is a child of its job's run");
            model.GetTagItem("sluice.tables.read").ShouldBe("dw.fact_sales");
            model.GetTagItem("sluice.tables.written").ShouldBe("mart.customer_ytd_spending");
            model.GetTagItem("sluice.warehouse").ShouldBe("duckdb");
            ((long)model.GetTagItem("sluice.rows.out")!).ShouldBeGreaterThan(0);
        }

        var staging = mine.First(a => a.DisplayName == "model sales-warehouse/daily/staging.stg_sales");
        ((string)staging.GetTagItem("sluice.tables.read")!).ShouldContain("raw.", customMessage: "a staging model reads the lake table its files landed in");
    }

    private static ColumnBatch Ids(params long[] ids) => new(Facts, [ids.Select(i => (long?)i).ToArray()], ids.Length);

    private sealed class PassStep : IBatchStep
    {
        public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct) => ValueTask.FromResult(batch);
    }
}
