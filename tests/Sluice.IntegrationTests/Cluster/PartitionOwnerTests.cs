using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Net;
using Sluice.Cluster;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Nats;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A worker's partitions with per-key order (<see cref="PartitionOwner"/>) on the shared metadata store and the shared
/// JetStream servers: every partition leased to the worker has a live reader, or is released.
/// </summary>
public sealed class PartitionOwnerTests : IAsyncDisposable
{
    private readonly string _name = "po" + Guid.NewGuid().ToString("N")[..8];
    private readonly TempFolder _temp = new("sluice-partition-owner");
    private readonly JetStreamLog _stream;
    private readonly MetadataStore _store;

    public PartitionOwnerTests()
    {
        var nats = Environment.GetEnvironmentVariable("SLUICE_CLUSTER_NATS") is { Length: > 0 } urls ? urls : "nats://127.0.0.1:4222";
        _stream = new JetStreamLog(new ClusterOptions(nats.Split(','), 2, 1, TimeSpan.FromSeconds(5)), _name,
            new HttpIngestOptions { Stream = "s", MaxBacklogBytes = 16L << 20, DedupWindow = TimeSpan.FromMinutes(1) });
        _store = MetadataStore.For(new Sluice.Core.DataDirectory(_temp.Path), SharedMetadata.Parse(ServerSettings.PostgresConnectionString, _name));
    }

    [Fact]
    public async Task A_lease_under_the_workers_id_that_it_does_not_read_is_released_and_read_under_a_new_token()
    {
        var leases = new PartitionLeases(_store, _stream.StreamName, "w1", 2, TimeSpan.FromSeconds(3), TimeProvider.System);
        // Taken under the worker's id behind its back: a take that committed while its answer was lost (a timeout under
        // load), or a lease the worker stopped reading when it could not renew in time and nobody took meanwhile.
        leases.TryTake(0).ShouldBe(new PartitionLease(0, 1));
        var owner = new PartitionOwner(leases, _stream, TimeProvider.System, NullLogger.Instance, _ => false);
        var read = new ConcurrentDictionary<int, long>();
        using var stop = new CancellationTokenSource();
        var inbox = System.Threading.Channels.Channel.CreateUnbounded<int>();
        var running = owner.RunAsync(async (consumer, partition, token, ct) =>
        {
            read[partition] = token;
            await Task.Delay(Timeout.Infinite, ct);
        }, inbox.Writer, stop.Token);
        try
        {
            // Renewed forever and never read, partition 0 would stall: the worker gives it back and takes it again,
            // with a new token and a consumer of its own.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!(read.TryGetValue(0, out var t) && t == 2 && read.ContainsKey(1)))
            {
                running.IsCompleted.ShouldBeFalse($"the owner stopped: {running.Exception}");
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"partition 0 read under a new lease within 60 s; read: {string.Join(", ", read.Select(r => $"{r.Key} t{r.Value}"))}; " +
                    $"leases: {string.Join(", ", leases.Rows().Select(r => $"{r.Partition} {r.Owner} t{r.Token}"))}");
                await Task.Delay(100);
            }

            leases.Rows().Where(r => r.Owner == "w1").Select(r => (r.Partition, r.Token)).Order().ToList().ShouldBe(new List<(int, long)> { (0, 2L), (1, 1L) }, "each lease the worker holds is one it reads");
            owner.Held.ShouldBe(new[] { 0, 1 });
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await running;
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }
    }

    [Fact]
    public async Task A_reader_that_gets_none_of_the_events_waiting_is_read_again_then_its_lease_is_given_up_and_read_from_a_new_consumer()
    {
        var leases = new PartitionLeases(_store, _stream.StreamName, "w1", 2, TimeSpan.FromSeconds(3), TimeProvider.System);
        var owner = new PartitionOwner(leases, _stream, TimeProvider.System, NullLogger.Instance, _ => false);
        var reads = new ConcurrentQueue<(int Partition, long Token, string Consumer)>();
        using var stop = new CancellationTokenSource();
        var inbox = System.Threading.Channels.Channel.CreateUnbounded<int>();
        // A consume that stays open and is handed nothing (what a JetStream node's loss and return can leave behind):
        // the reader never takes a message, while partition 0 has events waiting.
        var running = owner.RunAsync(async (consumer, partition, token, ct) =>
        {
            reads.Enqueue((partition, token, consumer.Info.Name));
            await Task.Delay(Timeout.Infinite, ct);
        }, inbox.Writer, stop.Token);
        try
        {
            await _stream.PublishAsync(Enumerable.Range(0, 20).Select(i => (0, (string?)$"m{i}", new byte[] { (byte)i })).ToList(), CancellationToken.None);
            string Seen() => $"reads: {string.Join(", ", reads.Select(r => $"{r.Partition} t{r.Token} {r.Consumer}"))}; leases: {string.Join(", ", leases.Rows().Select(r => $"{r.Partition} {r.Owner} t{r.Token}"))}";
            // Two looks (a lease duration apart) with nothing delivered: read again under the same lease; and again
            // nothing: the lease is given up and taken again, read from the new token's consumer.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            while (!reads.Any(r => r.Partition == 0 && r.Token > 1))
            {
                running.IsCompleted.ShouldBeFalse($"the owner stopped: {running.Exception}");
                DateTime.UtcNow.ShouldBeLessThan(deadline, "partition 0 read under a new lease within 120 s; " + Seen());
                await Task.Delay(100);
            }

            reads.Count(r => r.Partition == 0 && r.Token == 1).ShouldBeGreaterThanOrEqualTo(2, "read again under its lease before the lease was given up; " + Seen());
            reads.Last(r => r.Partition == 0).Consumer.ShouldStartWith(_stream.PartitionConsumerName(0, reads.Last(r => r.Partition == 0).Token) + "-", Case.Sensitive, Seen());
            reads.Where(r => r.Partition == 1).Select(r => r.Token).Distinct().ShouldBe(new[] { 1L }, "partition 1, with nothing waiting, is left alone; " + Seen());
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await running;
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await using (var nats = new NatsConnection(new NatsOpts { Url = Environment.GetEnvironmentVariable("SLUICE_CLUSTER_NATS") is { Length: > 0 } urls ? urls : "nats://127.0.0.1:4222" }))
        {
            try
            {
                await nats.CreateJetStreamContext().DeleteStreamAsync(_stream.StreamName);
            }
            catch (NATS.Client.JetStream.NatsJSApiException)
            {
                // never created
            }
        }

        await _stream.DisposeAsync();
        await using (var connection = new Npgsql.NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await connection.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{_name} CASCADE", connection);
            await cmd.ExecuteNonQueryAsync();
        }

        _temp.Dispose();
    }
}
