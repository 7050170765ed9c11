using Sluice.Connectors.Nats;

namespace Sluice.Tests.Cluster;

/// <summary>
/// A partition consumer's name carries its lease token, then a random part of its own (a name is never made twice:
/// NATS 2.9 keeps a stale Raft group for a name made again while a node was down, JetStreamLog.PartitionConsumerAsync).
/// </summary>
public sealed class PartitionConsumerNameTests
{
    [Theory]
    [InlineData("c1_p10-t2-0a1b2c3d", 2L)]
    [InlineData("c1_p10-t2", 2L)] // made by an earlier version: no random part
    [InlineData("c1_p10-t17-ffffffff", 17L)]
    [InlineData("c1_p1-t2-0a1b2c3d", null)] // partition 1's, not partition 10's
    [InlineData("c1_p10-tx-0a1b2c3d", null)]
    [InlineData("c1_workers", null)]
    public void The_token_is_read_from_names_of_this_partition_only(string name, long? token) =>
        JetStreamLog.TokenOf(name, "c1_p10-t").ShouldBe(token);
}
