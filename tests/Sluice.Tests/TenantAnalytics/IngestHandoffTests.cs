using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Schema;

namespace Sluice.Tests.TenantAnalytics;

public sealed class IngestHandoffTests
{
    private static readonly TableSchema Schema = new("t", [new FieldSpec("v", FieldType.String, false), new FieldSpec("_offset", FieldType.Integer, true)]);

    /// <summary>A request of <paramref name="events"/> events of 10 bytes each starting at <paramref name="start"/>, one row per event.</summary>
    private static HandedOffRows Request(long start, int events)
    {
        var builder = new ColumnBatchBuilder(Schema, 16);
        for (var i = 0; i < events; i++)
        {
            ((TypedColumnBuilder<string>)builder[0]).Set($"e{start + (10 * i)}");
            ((ValueColumnBuilder<long>)builder[1]).Set(i);
            builder.CommitRow();
        }

        return new HandedOffRows(start, start + (10 * events), [builder.Flush()], Enumerable.Range(0, events).Select(i => start + (10L * i)).ToArray(), [1]);
    }

    [Fact]
    public void Entries_are_taken_in_log_order_only_once_durable_and_with_their_log_offsets()
    {
        var handoff = new IngestHandoff(1000);
        handoff.TryAdd(Request(0, 3)).ShouldBeTrue();
        handoff.TryAdd(Request(30, 2)).ShouldBeTrue();
        handoff.Bytes.ShouldBe(50);
        handoff.NextStart.ShouldBe(0);

        handoff.TryTake(0, durableEnd: 29, out _).ShouldBeFalse("not on disk yet");
        handoff.TryTake(0, durableEnd: 30, out var first).ShouldBeTrue();
        var placed = first.Place()[0];
        placed.Column<long>(1).ShouldBe([0L, 10L, 20L], "each row's _offset is its event's start in the log");
        placed.Strings(0).ShouldBe(["e0", "e10", "e20"]);
        handoff.TryTake(0, 100, out _).ShouldBeFalse("taken once");
        handoff.TryTake(30, 100, out var second).ShouldBeTrue();
        second.Events.ShouldBe(2);
        handoff.Bytes.ShouldBe(0);
        handoff.NextStart.ShouldBeNull();
    }

    [Fact]
    public void A_reader_past_an_entry_drops_it_and_a_gap_is_left_to_the_log()
    {
        var handoff = new IngestHandoff(1000);
        handoff.TryAdd(Request(0, 1)).ShouldBeTrue();
        handoff.TryAdd(Request(50, 1)).ShouldBeTrue();
        handoff.TryTake(10, 100, out _).ShouldBeFalse("bytes 10..50 were not handed off: the reader reads them from the log");
        handoff.NextStart.ShouldBe(50, "the entry the reader is past is gone");
        handoff.Bytes.ShouldBe(10);
        handoff.TryTake(50, 100, out _).ShouldBeTrue();
    }

    [Fact]
    public void It_holds_no_more_than_its_capacity()
    {
        var handoff = new IngestHandoff(25);
        handoff.HasRoom(20).ShouldBeTrue();
        handoff.TryAdd(Request(0, 2)).ShouldBeTrue();
        handoff.HasRoom(10).ShouldBeFalse();
        handoff.TryAdd(Request(20, 1)).ShouldBeFalse("full: that request is read from the log");
        handoff.Bytes.ShouldBe(20);
    }

    [Fact]
    public void Withdraw_takes_back_only_the_entry_added_last()
    {
        var handoff = new IngestHandoff(1000);
        var first = Request(0, 1);
        var second = Request(10, 2);
        handoff.TryAdd(first).ShouldBeTrue();
        handoff.TryAdd(second).ShouldBeTrue();
        handoff.Withdraw(first);
        handoff.Bytes.ShouldBe(30, "not the last entry: kept");
        handoff.Withdraw(second);
        handoff.Bytes.ShouldBe(10);
        handoff.TryTake(0, 100, out var left).ShouldBeTrue();
        left.ShouldBeSameAs(first);
        handoff.NextStart.ShouldBeNull();
    }
}
