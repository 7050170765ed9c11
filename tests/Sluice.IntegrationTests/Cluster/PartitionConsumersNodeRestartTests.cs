using System.Collections.Concurrent;
using NATS.Client.JetStream;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// Per-key order's consumers (<see cref="JetStreamLog.PartitionConsumerAsync"/>, one per partition and lease) on a
/// three-node JetStream cluster of the test's own, with leases moving while a node is killed and started again, each
/// node in turn: every move is read from a consumer within 90 s, and each restarted node is current (<c>/healthz</c>)
/// within 180 s. On NATS 2.9.10 this failed both ways before partition consumers got a new name at each making and
/// their state in memory (docs/SCALING.md, "A name made twice"): a name made again left the restarted node with a
/// stale Raft group ("consumer ... is not current" for good), and a consumer brought back from the node's disk after
/// its deletion refused every later consumer of its partition ("filtered consumer not unique on workqueue stream").
/// </summary>
[Trait("Category", "Chaos")]
[Collection(ClusterWorkersSerial.Name)]
public sealed class PartitionConsumersNodeRestartTests
{
    private const int Partitions = 16;

    private readonly ConcurrentQueue<string> _said = new();

    private void Say(string text) => _said.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {text}");

    private string Said() => string.Join('\n', _said.TakeLast(80));

    [Fact]
    public async Task Leases_moving_while_a_node_is_killed_and_started_again_leave_every_partition_read_and_the_node_current()
    {
        using var temp = new TempFolder("sluice-partition-restart");
        await using var nats = await NatsTestCluster.StartAsync(temp.Sub("nats"));
        var name = "r" + Guid.NewGuid().ToString("N")[..8];
        await using var log = new JetStreamLog(new ClusterOptions(nats.Urls.Split(','), Partitions, 3, TimeSpan.FromSeconds(10)) { Name = name }, "restart",
            new HttpIngestOptions { Stream = "s", MaxBacklogBytes = 64L << 20, DedupWindow = TimeSpan.FromMinutes(1) });
        using var stopAll = new CancellationTokenSource();
        await log.EnsureAsync(CancellationToken.None);
        // Each partition's lease token, as the lease table would hold it: a move takes the next one, as a new owner does.
        var tokens = new long[Partitions];
        var readers = new ConcurrentDictionary<int, CancellationTokenSource>();

        // A partition's owner: reads and acknowledges; its consumer deleted under it, it makes another only while the
        // lease is still its own (as PartitionOwner.RemakeAsync).
        async Task ReadAsync(int p, long token, INatsJSConsumer consumer, CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await foreach (var m in consumer.ConsumeAsync<ReadOnlyMemory<byte>>(opts: new NatsJSConsumeOpts { MaxMsgs = 200 }, cancellationToken: ct))
                    {
                        await m.AckAsync(cancellationToken: ct);
                    }

                    return;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
                {
                    try
                    {
                        if (await JetStreamLog.LookAsync(consumer, ct) == ConsumerLook.Gone)
                        {
                            if (Interlocked.Read(ref tokens[p]) != token) { return; }
                            if (await log.PartitionConsumerAsync(p, token, ct) is not { } made) { return; }
                            consumer = made;
                            Say($"p{p} t{token}: its consumer deleted, made again ({e.Message})");
                            continue;
                        }

                        await Task.Delay(1000, ct);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    catch (Exception again) when (again is NATS.Client.Core.NatsException or TimeoutException)
                    {
                        Say($"p{p} t{token}: {again.Message}");
                    }
                }
            }
        }

        // A lease moving to a new owner: its consumer made (older ones deleted), tried again for 90 s while JetStream refuses.
        async Task MoveAsync(int p)
        {
            var token = Interlocked.Increment(ref tokens[p]);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (true)
            {
                try
                {
                    var consumer = await log.PartitionConsumerAsync(p, token, stopAll.Token);
                    consumer.ShouldNotBeNull($"partition {p}: no consumer of a newer lease than {token} exists\n{Said()}");
                    var stop = CancellationTokenSource.CreateLinkedTokenSource(stopAll.Token);
                    if (readers.TryRemove(p, out var old)) { await old.CancelAsync(); }
                    readers[p] = stop;
                    _ = Task.Run(() => ReadAsync(p, token, consumer, stop.Token));
                    return;
                }
                catch (Exception e) when (e is NATS.Client.Core.NatsException or TimeoutException)
                {
                    Say($"p{p} t{token}: not made yet: {e.Message}");
                    DateTime.UtcNow.ShouldBeLessThan(deadline, $"partition {p} got no consumer for lease {token} within 90 s: {e.Message}\n{Said()}");
                    await Task.Delay(1000);
                }
            }
        }

        var publisher = Task.Run(async () =>
        {
            for (var n = 0; !stopAll.IsCancellationRequested; n++)
            {
                try
                {
                    await log.PublishAsync(Enumerable.Range(0, Partitions).Select(p => (p, (string?)$"m{n}-{p}", new byte[] { 1, 2, 3 })).ToList(), stopAll.Token);
                    await Task.Delay(50, stopAll.Token);
                }
                catch (OperationCanceledException) when (stopAll.IsCancellationRequested)
                {
                    return;
                }
                catch (EventsNotStoredException)
                {
                    // no leader for a moment: the next round
                }
            }
        });

        try
        {
            await Task.WhenAll(Enumerable.Range(0, Partitions).Select(MoveAsync));
            // Workers joining: half the partitions move before any node goes.
            await Task.WhenAll(Enumerable.Range(0, Partitions / 2).Select(MoveAsync));
            for (var node = 0; node < 3; node++)
            {
                // Every lease moving as the node dies, so its log may hold consumers made and deletions it has not applied yet.
                Say($"node {node} killed");
                var burst = Task.WhenAll(Enumerable.Range(0, Partitions).Select(MoveAsync));
                await Task.Delay(Random.Shared.Next(50, 400));
                nats.Kill(node);
                await burst;
                // A dead worker's leases taken over while the node is down, some twice.
                var moved = Enumerable.Range(0, Partitions).Where(p => p % 3 == node).ToList();
                await Task.WhenAll(moved.Select(MoveAsync));
                await Task.WhenAll(moved.Take(2).Select(MoveAsync));
                nats.Start(node);
                Say($"node {node} started again");
                // And balanced again as the worker comes back.
                await Task.WhenAll(moved.Skip(2).Take(2).Select(MoveAsync));
                await nats.WaitReadyAsync(node);
            }

            // Every partition readable from its lease's consumer: one more move each, on the whole cluster.
            await Task.WhenAll(Enumerable.Range(0, Partitions).Select(MoveAsync));
        }
        finally
        {
            await stopAll.CancelAsync();
            await publisher;
        }
    }
}
