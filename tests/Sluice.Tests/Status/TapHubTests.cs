using System.Text.Json;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.Core.Status;

namespace Sluice.Tests.Status;

public class TapHubTests
{
    private static RecordBatch Batch(int rows, long position)
    {
        var schema = new TableSchema("events", [new FieldSpec("id", FieldType.Integer, true), new FieldSpec("name", FieldType.String, false)]);
        return new RecordBatch(new ColumnBatch(schema, [Enumerable.Range(0, rows).Select(i => (long?)i).ToArray(), Enumerable.Range(0, rows).Select(i => $"n{i}").ToArray()], rows), position);
    }

    [Fact]
    public void A_listener_gets_the_records_of_its_stage_as_json_lines()
    {
        var hub = new TapHub();
        using var source = hub.Listen(null)!;
        using var sink = hub.Listen("lake")!;
        hub.Publish(null, Batch(2, 7));
        source.Lines.TryRead(out var line).ShouldBeTrue();
        using (var doc = JsonDocument.Parse(line!))
        {
            doc.RootElement.GetProperty("table").GetString().ShouldBe("events");
            doc.RootElement.GetProperty("position").GetInt64().ShouldBe(7);
            doc.RootElement.GetProperty("record").GetProperty("name").GetString().ShouldBe("n0");
        }

        source.Lines.TryRead(out _).ShouldBeTrue();
        sink.Lines.TryRead(out _).ShouldBeFalse("the sink committed nothing yet");
        hub.Publish("lake", Batch(1, 7));
        sink.Lines.TryRead(out _).ShouldBeTrue();
    }

    [Fact]
    public void A_slow_reader_loses_lines_instead_of_holding_memory_and_a_batch_gives_only_a_sample()
    {
        var hub = new TapHub();
        using var listener = hub.Listen(null)!;
        hub.Publish(null, Batch(10_000, 1));
        listener.Dropped.ShouldBe(0, "only a sample of a batch is copied");
        for (var i = 0; i < 10; i++) { hub.Publish(null, Batch(TapHub.RowsPerBatch, i + 2)); }
        var waiting = 0;
        while (listener.Lines.TryRead(out _)) { waiting++; }
        waiting.ShouldBe(TapHub.Buffer);
        listener.Dropped.ShouldBe((11 * TapHub.RowsPerBatch) - TapHub.Buffer);
    }

    [Fact]
    public void Listeners_are_bounded_and_leave_when_disposed()
    {
        var hub = new TapHub();
        hub.Listening.ShouldBeFalse();
        var listeners = Enumerable.Range(0, TapHub.MaxListeners).Select(_ => hub.Listen(null)!).ToList();
        hub.Listen(null).ShouldBeNull();
        foreach (var l in listeners) { l.Dispose(); }
        hub.Listening.ShouldBeFalse();
        using var again = hub.Listen(null);
        again.ShouldNotBeNull();
    }
}
