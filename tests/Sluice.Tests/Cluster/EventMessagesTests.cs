using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;

namespace Sluice.Tests.Cluster;

/// <summary>How a request's events become JetStream messages in cluster mode (<see cref="EventMessages"/>): one per partition, ids a retry repeats, sizes bounded.</summary>
public sealed class EventMessagesTests
{
    private static PublishedEvent Event(ulong key, string json, long receivedMs = 1_700_000_000_000, string tenant = "acme")
    {
        var tenantBytes = Encoding.UTF8.GetBytes(tenant);
        var body = Encoding.UTF8.GetBytes(json);
        var record = new byte[LandingRecord.Size(tenantBytes.Length, body.Length)];
        LandingRecord.Write(record, key, receivedMs, tenantBytes, body);
        return new PublishedEvent(key, tenant, record);
    }

    /// <summary>The events of a message, read back as the worker reads them (landing records one after the other).</summary>
    private static List<(ulong Key, string Json)> Read(byte[] data)
    {
        var events = new List<(ulong, string)>();
        var at = 0;
        while (at < data.Length)
        {
            LandingRecord.TryRead(data.AsSpan(at), out var size).ShouldBe(ReadStatus.Ok);
            var e = LandingRecord.Decode(data.AsMemory(at, size), 0, LandingRecord.Utf8);
            events.Add((e.KeyHash, LandingRecord.Utf8(e.Json)));
            at += size;
        }

        return events;
    }

    [Fact]
    public void A_requests_events_are_one_message_per_partition_in_their_order_with_an_id_a_retry_repeats()
    {
        var events = Enumerable.Range(1, 10).Select(i => Event((ulong)i, $"{{\"n\":{i}}}")).ToList();
        var messages = EventMessages.Of(events, e => (int)(e.KeyHash % 3), 1 << 20, out var repeated);

        repeated.ShouldBe(0);
        messages.Select(m => m.Partition).Order().ToArray().ShouldBe(new[] { 0, 1, 2 });
        messages.Sum(m => m.Events).ShouldBe(10);
        var partition1 = messages.Single(m => m.Partition == 1);
        Read(partition1.Data).ShouldBe(new List<(ulong, string)> { (1, "{\"n\":1}"), (4, "{\"n\":4}"), (7, "{\"n\":7}"), (10, "{\"n\":10}") });
        partition1.Events.ShouldBe(4);

        // The same request again, later (a client's retry, to any worker): the same ids, so JetStream stores each message once.
        var again = EventMessages.Of(Enumerable.Range(1, 10).Select(i => Event((ulong)i, $"{{\"n\":{i}}}", 1_700_000_009_000)).ToList(), e => (int)(e.KeyHash % 3), 1 << 20, out _);
        again.Select(m => m.MsgId).ToArray().ShouldBe(messages.Select(m => m.MsgId).ToArray());
        messages.Select(m => m.MsgId).Distinct().Count().ShouldBe(3, "each partition's message has an id of its own");

        // Other events on the same partition: another id.
        var other = EventMessages.Of([Event(1, "{}"), Event(4, "{}"), Event(13, "{}")], e => (int)(e.KeyHash % 3), 1 << 20, out _);
        other.ShouldHaveSingleItem().MsgId.ShouldNotBe(partition1.MsgId);
    }

    [Fact]
    public void One_event_is_the_message_older_versions_published_and_a_key_twice_in_a_request_is_sent_once()
    {
        var one = Event(0xabcdef, "{\"a\":1}");
        var message = EventMessages.Of([one], _ => 5, 1 << 20, out _).ShouldHaveSingleItem();
        message.Data.ShouldBe(one.Record.ToArray(), "one landing record alone, as every version read it");
        message.MsgId.ShouldBe("0000000000abcdef", "the event's key hash, as before");

        var twice = EventMessages.Of([Event(7, "{\"v\":1}"), Event(8, "{}"), Event(7, "{\"v\":2}")], _ => 0, 1 << 20, out var repeated);
        repeated.ShouldBe(1);
        Read(twice.ShouldHaveSingleItem().Data).ShouldBe(new List<(ulong, string)> { (7, "{\"v\":1}"), (8, "{}") }, "the first of a key, as the single process keeps it");
    }

    [Fact]
    public void Keyless_events_go_without_an_id_and_a_message_never_passes_the_size_limit()
    {
        var keyless = EventMessages.Of([Event(0, "{}"), Event(0, "{}"), Event(3, "{}")], _ => 0, 1 << 20, out _);
        keyless.Count.ShouldBe(2, "keyed and keyless events apart");
        keyless.Single(m => m.MsgId is null).Events.ShouldBe(2, "keyless events are not deduplicated, so never repeated either");

        var big = Enumerable.Range(1, 50).Select(i => Event((ulong)i, "{\"pad\":\"" + new string('x', 1000) + "\"}")).ToList();
        var limit = 10 * big[0].Record.Length + 10;
        var messages = EventMessages.Of(big, _ => 0, limit, out _);
        messages.Count.ShouldBe(5);
        messages.ShouldAllBe(m => m.Data.Length <= limit);
        messages.SelectMany(m => Read(m.Data)).Select(e => e.Key).ToArray().ShouldBe(Enumerable.Range(1, 50).Select(i => (ulong)i).ToArray(), "in their order across the messages");
    }

    [Fact]
    public void Offsets_are_unique_per_event_rise_with_the_stream_and_fall_in_their_messages_slot()
    {
        EventMessages.Offset(7, 0).ShouldBeLessThan(EventMessages.Offset(7, 1));
        EventMessages.Offset(7, EventMessages.MaxEvents - 1).ShouldBeLessThan(EventMessages.Offset(8, 0));
        var slots = EventMessages.Slots("log", [7, 8, 10]);
        slots.Ranges.Count.ShouldBe(2, "consecutive messages join into one run");
        Sluice.Core.Pipeline.SequenceRange.AnyHolds(slots.Ranges, EventMessages.Offset(8, 123)).ShouldBeTrue();
        Sluice.Core.Pipeline.SequenceRange.AnyHolds(slots.Ranges, EventMessages.Offset(9, 0)).ShouldBeFalse();
    }
}
