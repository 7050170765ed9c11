using NATS.Client.JetStream.Models;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;

namespace Sluice.Tests.Cluster;

/// <summary>
/// Which JetStream publish answers confirm a message is stored (<see cref="JetStreamLog.Stored"/>): a request is
/// answered 202 only on those, so one taken for stored wrongly is events lost with a 202.
/// </summary>
public sealed class JetStreamPubAckTests
{
    [Fact]
    public void A_new_message_is_not_a_duplicate_and_its_answer_is_checked_as_usual() =>
        JetStreamLog.Stored(new PubAckResponse { Stream = "S", Seq = 7 }).ShouldBeFalse();

    [Fact]
    public void A_duplicate_with_its_sequence_is_stored_already() =>
        JetStreamLog.Stored(new PubAckResponse { Stream = "S", Seq = 7, Duplicate = true }).ShouldBeTrue();

    [Fact]
    public void A_duplicate_with_sequence_0_is_not_stored_and_refuses_the_request()
    {
        // What a NATS 2.9 stream leader answers a retry while the first copy is still being replicated: that copy may be
        // lost with its leader, so the retry is refused (503) and sent again, never answered 202 on it.
        var e = Should.Throw<EventsNotStoredException>(() => JetStreamLog.Stored(new PubAckResponse { Stream = "S", Seq = 0, Duplicate = true }));
        e.Message.ShouldContain("not stored");
    }
}
