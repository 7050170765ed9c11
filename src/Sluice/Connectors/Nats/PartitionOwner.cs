using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using Sluice.Cluster;

namespace Sluice.Connectors.Nats;

/// <summary>
/// A worker's share of a partitioned stream: every third of a lease's duration it renews the leases it holds
/// (<see cref="PartitionLeases"/>), stops reading any it lost, gives up partitions above its fair share once their
/// events are all acknowledged (a worker joined), and takes free ones below it (a worker left or died: its leases
/// expired). Each partition it holds is read from a durable consumer of its own, created for the lease's token, so
/// one key's events reach one worker at a time, in their order.
/// </summary>
internal sealed class PartitionOwner(PartitionLeases leases, JetStreamLog stream, TimeProvider time, ILogger log, Func<int, bool> hasPending)
{
    /// <summary>Reads one partition's consumer into the pipeline until cancelled (the consumer, partition, token, and the partition's stop).</summary>
    public delegate Task Reader(INatsJSConsumer consumer, int partition, long token, CancellationToken ct);

    private readonly ConcurrentDictionary<int, long> _held = new();
    private readonly ConcurrentDictionary<int, (long Token, CancellationTokenSource Stop, Task Pump)> _reading = new();
    private readonly HashSet<int> _releasing = [];
    private readonly ConcurrentDictionary<int, long> _superseded = new();
    private readonly ConcurrentDictionary<int, long> _stalled = new();
    private readonly ConcurrentDictionary<int, long> _restarted = new();
    private DateTimeOffset _renewedAt;

    public PartitionLeases Leases => leases;

    /// <summary>The worker's registry entry, told each partition taken and let go (<c>status --cluster</c>); null outside a worker.</summary>
    public WorkerRegistry? Registry { get; init; }

    /// <summary>The partitions this worker holds now, in order (status, the worker registry).</summary>
    public IReadOnlyList<int> Held => _held.Keys.Order().ToList();

    /// <summary>Whether events of this partition and lease are still to be batched (not given up or lost since they came).</summary>
    public bool Reading(int partition, long token) => _reading.TryGetValue(partition, out var r) && r.Token == token;

    /// <summary>Whether this worker still holds the lease (its events may be acknowledged).</summary>
    public bool Holds(int partition, long token) => _held.TryGetValue(partition, out var t) && t == token;

    /// <summary>Keeps the leases until <paramref name="ct"/> is cancelled; a reader's failure other than JetStream's fails the pipeline through <paramref name="inbox"/>.</summary>
    public async Task RunAsync<T>(Reader read, ChannelWriter<T> inbox, CancellationToken ct)
    {
        var every = leases.Duration / 3;
        _renewedAt = time.GetUtcNow();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    Tick(read, ct);
                }
                catch (Exception e) when (e is System.Data.Common.DbException or NATS.Client.Core.NatsException or TimeoutException or InvalidOperationException && !ct.IsCancellationRequested)
                {
                    NatsLog.LeasesNotRenewed(log, stream.StreamName, e.Message);
                    if (time.GetUtcNow() - _renewedAt >= leases.Duration)
                    {
                        // Unrenewed this long, the leases may be another's: stop reading them (the sinks' fence refuses what is in flight).
                        foreach (var p in _held.Keys) { Lose(p, "its lease could not be renewed in time"); }
                    }
                }

                foreach (var (p, r) in _reading)
                {
                    if (r.Pump.IsFaulted && r.Pump.Exception!.InnerException is not (NATS.Client.Core.NatsException or OperationCanceledException or TimeoutException))
                    {
                        inbox.TryComplete(r.Pump.Exception.InnerException);
                        return;
                    }
                }

                await Task.Delay(every, time, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopping
        }
        catch (Exception e)
        {
            // Not a passing outage: the pipeline fails with it (the reader waits on the inbox).
            inbox.TryComplete(e);
            throw;
        }
        finally
        {
            foreach (var p in _reading.Keys) { StopReading(p); }
        }
    }

    private void Tick(Reader read, CancellationToken ct)
    {
        // A partition whose reader made no progress with events waiting, even read again: given up here, before the
        // renewal, so that it is taken (by this worker or another) under a new token, which reads it from a new consumer.
        foreach (var (p, stale) in _stalled)
        {
            if (!_stalled.TryRemove(p, out _) || !_held.TryGetValue(p, out var token) || token != stale) { continue; }
            Lose(p, "its reader made no progress with events waiting");
            leases.Release(new PartitionLease(p, token));
        }

        var renewed = leases.Renew().ToDictionary(l => l.Partition, l => l.Token);
        _renewedAt = time.GetUtcNow();
        foreach (var (p, token) in _held)
        {
            if (!renewed.TryGetValue(p, out var now) || now != token) { Lose(p, "another worker took it after it expired"); }
            else if (_superseded.TryRemove(p, out var stale) && stale == token) { Lose(p, "a newer lease's consumer exists"); }
        }

        // A lease the store has under this worker's id that it does not read: one it stopped reading (lost when it could
        // not renew in time, or superseded) that nobody took meanwhile, or one taken by a statement that committed but
        // whose answer never came (a timeout under load). Renewing it forever would leave its partition with no reader
        // and nobody allowed to take it: give it back, and take it again below (a new token, a new consumer) if this
        // worker's share has room.
        foreach (var (p, token) in renewed)
        {
            if (_held.ContainsKey(p)) { continue; }
            leases.Release(new PartitionLease(p, token));
            NatsLog.UnreadLeaseReleased(log, stream.StreamName, p, token);
        }

        foreach (var p in _releasing.ToList())
        {
            if (!_held.TryGetValue(p, out var token)) { _releasing.Remove(p); continue; }
            if (hasPending(p)) { continue; }
            leases.Release(new PartitionLease(p, token));
            _held.TryRemove(p, out _);
            Registry?.Release("partitions", Item(p));
            _releasing.Remove(p);
            NatsLog.PartitionReleased(log, stream.StreamName, p);
        }

        var share = PartitionLeases.FairShare(leases.Partitions, leases.LiveWorkers());
        var keeping = _held.Count - _releasing.Count;
        if (keeping > share)
        {
            // A worker joined: give up the surplus, reading it no more; the leases go once its batches are acknowledged.
            foreach (var p in _held.Keys.Except(_releasing).Order().TakeLast(keeping - share).ToList())
            {
                StopReading(p);
                _releasing.Add(p);
            }
        }
        else if (keeping < share)
        {
            // Start at a point of this worker's own, so that workers starting together do not all try the same partitions first.
            var free = leases.Free();
            var start = free.Count == 0 ? 0 : (int)((uint)StringComparer.Ordinal.GetHashCode(leases.Worker) % (uint)free.Count);
            foreach (var p in free.Skip(start).Concat(free.Take(start)))
            {
                if (keeping >= share) { break; }
                if (leases.TryTake(p) is { } lease)
                {
                    _held[p] = lease.Token;
                    Registry?.Hold("partitions", Item(p));
                    keeping++;
                    NatsLog.PartitionTaken(log, stream.StreamName, p, lease.Token);
                }
            }
        }

        // Every partition held and not being given up is read, from its lease's own consumer; one whose consume ended
        // (or whose consumer could not be made: a NATS node away) is read again. Off this loop: the renewals must not
        // wait on JetStream.
        foreach (var (p, token) in _held)
        {
            if (_releasing.Contains(p)) { continue; }
            if (_reading.TryGetValue(p, out var r) && r.Token == token && !r.Pump.IsCompleted) { continue; }
            StopReading(p);
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            _reading[p] = (token, stop, Task.Run(() => ReadAsync(read, p, token, stop.Token), CancellationToken.None));
        }
    }

    private async Task ReadAsync(Reader read, int partition, long token, CancellationToken ct)
    {
        var consumer = await stream.PartitionConsumerAsync(partition, token, ct).ConfigureAwait(false);
        if (consumer is null)
        {
            _superseded[partition] = token;
            return;
        }

        // The consume may end (the pump completes and the next renewal reads the partition again), but it might also
        // stay open and be served no more; the watch ends such a reader, so every partition held has a live one.
        using var again = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watch = WatchAsync(consumer, partition, token, again);
        try
        {
            await read(consumer, partition, token, again.Token).ConfigureAwait(false);
        }
        finally
        {
            await again.CancelAsync().ConfigureAwait(false);
            try
            {
                await watch.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // stopped with the reader
            }
        }
    }

    /// <summary>
    /// Every lease duration, asks JetStream about the partition's consumer, and acts when the reader makes no progress:
    /// its consumer is gone (the reader ends and is read again), or for two looks in a row (one after a restart) it had
    /// events to deliver or redeliver (pending or unacknowledged) while nothing was delivered or acknowledged since the
    /// last look (or the consumer's making) and no batch of the partition waited for the sinks. A consume can stay open
    /// and be served no more (see docs/SCALING.md, "Every lease held is read"); only observable progress tells. The
    /// reader is then read again if nothing is outstanding (that cannot reorder a key: the next consume starts at the
    /// partition's oldest event) and it was not read again for this stall already; otherwise the lease is given up
    /// (<see cref="Tick"/>), and the partition is read under a new token from a new consumer, which starts at its
    /// oldest unacknowledged event, in order.
    /// </summary>
    private async Task WatchAsync(INatsJSConsumer consumer, int partition, long token, CancellationTokenSource again)
    {
        var last = (consumer.Info.Delivered.StreamSeq, consumer.Info.AckFloor.StreamSeq);
        // A reader read again for a stall is given one look to show progress.
        var looks = _restarted.TryGetValue(partition, out var restartedUnder) && restartedUnder == token ? 1 : 2;
        var idle = 0;
        while (!again.IsCancellationRequested)
        {
            await Task.Delay(leases.Duration, time, again.Token).ConfigureAwait(false);
            var look = await JetStreamLog.LookAsync(consumer, again.Token).ConfigureAwait(false);
            if (look == ConsumerLook.Gone)
            {
                NatsLog.ReaderRestarted(log, stream.StreamName, partition, token, "its consumer is gone");
                await again.CancelAsync().ConfigureAwait(false);
                return;
            }

            // No node answers: the consume rides that out itself.
            if (look == ConsumerLook.NoAnswer) { continue; }

            var info = consumer.Info;
            var now = (info.Delivered.StreamSeq, info.AckFloor.StreamSeq);
            var waiting = info.NumPending > 0 || info.NumAckPending > 0;
            var moved = last != now;
            last = now;
            if (moved || !waiting || hasPending(partition))
            {
                idle = 0;
                if (moved) { _restarted.TryRemove(partition, out _); }
                continue;
            }

            if (++idle < looks) { continue; }
            var state = $"{info.NumPending} events waiting, {info.NumAckPending} delivered and unacknowledged, {info.NumWaiting} pull requests, last delivered sequence {info.Delivered.StreamSeq}, acknowledged up to {info.AckFloor.StreamSeq}";
            if (info.NumAckPending == 0 && !(_restarted.TryGetValue(partition, out var before) && before == token))
            {
                _restarted[partition] = token;
                NatsLog.ReaderRestarted(log, stream.StreamName, partition, token, "its consume got nothing of the events waiting (" + state + ")");
            }
            else
            {
                _restarted.TryRemove(partition, out _);
                _stalled[partition] = token;
                NatsLog.ReaderStalled(log, stream.StreamName, partition, token, (int)(leases.Duration.TotalSeconds * idle), state);
            }

            await again.CancelAsync().ConfigureAwait(false);
            return;
        }
    }

    /// <summary>
    /// A reader's consumer was deleted under it (409 Consumer Deleted, or found gone): the lease's consumer made again, or
    /// the one of the lease already there; null, and the reader ends, when the lease is no longer this worker's in the
    /// store (a new owner took it and deleted the consumer: making it again between the new owner's deletion and its
    /// making would have JetStream refuse the new owner's as not unique, and the two make and delete consumers in turn)
    /// or the store does not answer (the next renewal reads the partition again if it is still held).
    /// </summary>
    public async Task<INatsJSConsumer?> RemakeAsync(int partition, long token, CancellationToken ct)
    {
        bool mine;
        try
        {
            mine = leases.StillNames(new PartitionLease(partition, token));
        }
        catch (System.Data.Common.DbException e)
        {
            NatsLog.LeasesNotRenewed(log, stream.StreamName, e.Message);
            mine = false;
        }

        return mine ? await stream.PartitionConsumerAsync(partition, token, ct).ConfigureAwait(false) : null;
    }

    private void Lose(int partition, string why)
    {
        StopReading(partition);
        _releasing.Remove(partition);
        if (_held.TryRemove(partition, out var token))
        {
            Registry?.Release("partitions", Item(partition));
            NatsLog.PartitionLost(log, stream.StreamName, partition, token, why);
        }
    }

    /// <summary>A partition as the registry lists it: the JetStream stream and the partition's number.</summary>
    private string Item(int partition) => $"{stream.StreamName}/{partition}";

    private void StopReading(int partition)
    {
        if (_reading.TryRemove(partition, out var r))
        {
            r.Stop.Cancel();
            r.Stop.Dispose();
        }
    }

    /// <summary>Stopping, after the pipeline's last acknowledgement: the leases held are released and the heartbeat ends, so the others take the partitions at once.</summary>
    public void Leave()
    {
        try
        {
            foreach (var (p, token) in _held)
            {
                leases.Release(new PartitionLease(p, token));
                Registry?.Release("partitions", Item(p));
            }

            _held.Clear();
            leases.Leave();
        }
        catch (System.Data.Common.DbException e)
        {
            // The leases expire by themselves; the others take the partitions then.
            NatsLog.LeasesNotRenewed(log, stream.StreamName, e.Message);
        }
    }
}

internal static partial class NatsLog
{
    [LoggerMessage(43301, LogLevel.Information, "JetStream stream {JetStream}: this worker took partition {Partition} (lease token {Token})")]
    public static partial void PartitionTaken(ILogger logger, string jetStream, int partition, long token);

    [LoggerMessage(43302, LogLevel.Information, "JetStream stream {JetStream}: this worker gave partition {Partition} up to share it out (its events all acknowledged)")]
    public static partial void PartitionReleased(ILogger logger, string jetStream, int partition);

    [LoggerMessage(43303, LogLevel.Warning, "JetStream stream {JetStream}: this worker lost partition {Partition} (lease token {Token}): {Why}; it reads it no more and leaves its unacknowledged events to the new owner")]
    public static partial void PartitionLost(ILogger logger, string jetStream, int partition, long token, string why);

    [LoggerMessage(43304, LogLevel.Warning, "JetStream stream {JetStream}: the partition leases could not be renewed ({Reason}); trying again")]
    public static partial void LeasesNotRenewed(ILogger logger, string jetStream, string reason);

    [LoggerMessage(43900, LogLevel.Warning, "JetStream stream {JetStream}: partition {Partition} was leased to this worker (lease token {Token}) with no reader of it here; released, for this worker or another to take with a new token")]
    public static partial void UnreadLeaseReleased(ILogger logger, string jetStream, int partition, long token);

    [LoggerMessage(43901, LogLevel.Warning, "JetStream stream {JetStream}: partition {Partition} (lease token {Token}) is read again: {Why}")]
    public static partial void ReaderRestarted(ILogger logger, string jetStream, int partition, long token, string why);

    [LoggerMessage(43910, LogLevel.Warning, "JetStream stream {JetStream}: partition {Partition} (lease token {Token}) made no progress for {Seconds} s ({State}); its lease is given up, for this worker or another to read it under a new token from a new consumer")]
    public static partial void ReaderStalled(ILogger logger, string jetStream, int partition, long token, int seconds, string state);
}
