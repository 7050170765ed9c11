using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Pipeline;

namespace Sluice.Connectors.Nats;

/// <summary>
/// How a request's events go into JetStream: one message per partition (and per up to <see cref="MaxEvents"/> events
/// or the message size limit), its data the events' landing records one after the other. JetStream's cost is per
/// message (three file stores, a Raft round, an acknowledgement, a delivery, an ack), so a request of 100 events costs
/// about what one event did when each was a message of its own. A message of one record is what older versions
/// published, and is read the same way.
/// </summary>
/// <remarks>
/// Deduplication: a message of one keyed event has the event's key hash as its <c>Nats-Msg-Id</c> (as before); a
/// message of several keyed events a hash of their key hashes, in order, so a client's retry of the same request (to
/// any worker, the same events in the same order) is stored once, message by message, even when only part of it was
/// stored the first time. An event sent again within another request (other events beside it) is not recognised
/// there: it is stored again and the keyed sinks absorb it. Keyless events have no id, as before. A key twice in one
/// request is stored once (the first), as the single process does.
/// </remarks>
internal static class EventMessages
{
    /// <summary>Bits of a row's <c>_offset</c> that hold the event's index in its message (below them, its stream sequence).</summary>
    public const int IndexBits = 16;

    /// <summary>Events one message holds at most: the index must fit its bits of <c>_offset</c>.</summary>
    public const int MaxEvents = 1 << IndexBits;

    /// <summary>
    /// Bytes of a message at most: NATS's default <c>max_payload</c> (1 MiB) less room for the headers, or the server's
    /// smaller limit.
    /// </summary>
    public static int MaxBytes(long? serverMaxPayload) => (int)Math.Min(serverMaxPayload is > 0 ? serverMaxPayload.Value : 1 << 20, 1 << 20) - 4096;

    /// <summary>A row's <c>_offset</c>: its message's stream sequence, then its index in the message. Unique per event and rising with the stream.</summary>
    public static long Offset(long sequence, int index) => (sequence << IndexBits) | (long)index;

    /// <summary>
    /// The batch's events as <see cref="LogSequences"/> in <c>_offset</c> units: each message's whole slot (every
    /// offset its events may have), so that consecutive messages join into one run and a sink that skips replayed
    /// events by their rows' <c>_offset</c> (the lake) finds them inside.
    /// </summary>
    public static LogSequences Slots(string log, IEnumerable<long> sequences) =>
        new(log, SequenceRange.Coalesce(sequences.Where(s => s > 0).Select(s => new SequenceRange(Offset(s, 0), Offset(s, MaxEvents - 1)))));

    /// <summary>One message to publish: its partition, its id (null: not deduplicated), its events' landing records, and how many events it holds.</summary>
    public readonly record struct Message(int Partition, string? MsgId, byte[] Data, int Events);

    /// <summary>
    /// The messages of one request's events, each partition's events in their order. <paramref name="repeated"/>: events
    /// left out because their key came earlier in the request.
    /// </summary>
    public static List<Message> Of(IReadOnlyList<PublishedEvent> events, Func<PublishedEvent, int> partitionOf, int maxBytes, out int repeated)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(partitionOf);
        repeated = 0;
        // Keyed and keyless events apart: a message either has an id made of every event's key, or none.
        var groups = new Dictionary<(int Partition, bool Keyed), List<PublishedEvent>>();
        var seen = new HashSet<ulong>();
        foreach (var e in events)
        {
            if (e.KeyHash != 0 && !seen.Add(e.KeyHash))
            {
                repeated++;
                continue;
            }

            var group = (partitionOf(e), e.KeyHash != 0);
            if (!groups.TryGetValue(group, out var list)) { groups[group] = list = []; }
            list.Add(e);
        }

        var messages = new List<Message>(groups.Count);
        foreach (var ((partition, keyed), list) in groups)
        {
            var start = 0;
            while (start < list.Count)
            {
                // As many as fit, at least one (an event too large for a message fails its publish, as it always did).
                var end = start;
                var bytes = 0L;
                while (end < list.Count && end - start < MaxEvents && (end == start || bytes + list[end].Record.Length <= maxBytes))
                {
                    bytes += list[end].Record.Length;
                    end++;
                }

                messages.Add(Build(partition, keyed, list, start, end, (int)bytes));
                start = end;
            }
        }

        return messages;
    }

    private static Message Build(int partition, bool keyed, List<PublishedEvent> list, int start, int end, int bytes)
    {
        var data = new byte[bytes];
        var at = 0;
        for (var i = start; i < end; i++)
        {
            list[i].Record.Span.CopyTo(data.AsSpan(at));
            at += list[i].Record.Length;
        }

        var count = end - start;
        string? id = null;
        if (keyed && count == 1)
        {
            id = list[start].KeyHash.ToString("x16", CultureInfo.InvariantCulture);
        }
        else if (keyed)
        {
            var keys = new byte[count * 8];
            for (var i = 0; i < count; i++) { BinaryPrimitives.WriteUInt64LittleEndian(keys.AsSpan(i * 8), list[start + i].KeyHash); }
            id = "r" + Convert.ToHexStringLower(XxHash128.Hash(keys));
        }

        return new Message(partition, id, data, count);
    }
}
