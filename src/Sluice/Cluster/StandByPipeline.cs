using Microsoft.Extensions.Logging;
using Sluice.Connectors.Nats;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Status;

namespace Sluice.Cluster;

/// <summary>
/// A <c>postgres_cdc</c> pipeline on a worker of a cluster: every worker runs it, only the one holding the slot's
/// lock (<see cref="PgSlotLease"/>) reads the slot; the others stand by, green, with "stand-by for slot X" as the
/// pipeline's condition. On taking the lock a worker ends any session still reading the slot, then builds the
/// pipeline afresh, so its sinks' checkpoints (LSNs, in the shared metadata store) and the source's slot state are read
/// as its predecessor left them, and it goes on from the slot's confirmed position. A worker that loses the lock stops
/// reading at once (its sinks finish what they hold, which the next holder's idempotent writes absorb) and stands by again.
/// </summary>
public sealed class StandByPipeline : IRunnableSource, IStatusSource
{
    private readonly PipelineDefinition _definition;
    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly PostgresCdcOptions _options;
    private readonly ILogger _log;
    private PipelineStatus? _status;

    public StandByPipeline(PipelineDefinition definition, IEngineServices services, string recipe, PostgresCdcOptions options)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(services);
        _definition = definition;
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Cluster");
    }

    /// <summary>
    /// The running form of a recipe's pipeline: on a worker of a cluster (<c>run --cluster</c>) a <c>postgres_cdc</c>
    /// pipeline stands by for its slot; every other pipeline, and every pipeline of a single process, is built as usual.
    /// </summary>
    public static IRunnableSource Create(PipelineDefinition definition, IEngineServices services, string recipe)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(services);
        if (services.Cluster is not null && LeasedPullPipeline.Leased(definition)) { return new LeasedPullPipeline(definition, services, recipe); }
        return services.Cluster is not null && definition.Source is PostgresCdcSourceFactory cdc && definition.Sinks.Count > 0
            ? new StandByPipeline(definition, services, recipe, cdc.Options)
            : definition.Create(services, recipe);
    }

    /// <summary>This worker as the slot's lock names it (<c>pg_stat_activity.application_name</c>): host and process id.</summary>
    public static string Worker { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>The running pipeline's, when this worker holds the slot.</summary>
    TimeSpan IRunnableSource.DrainTimeout => StreamPipeline.DrainTimeout;

    public void AttachStatus(PipelineStatus status) => _status = status;

    public Task<int> RunOnceAsync(CancellationToken ct) =>
        throw new Core.SluiceException("run --once does not take --cluster: a cluster's pipelines run until stopped");

    public async Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct)
    {
        if (_services.Cluster is { CdcThroughJetStream: true } cluster)
        {
            await RunThroughJetStreamAsync(cluster, afterLoad, ct).ConfigureAwait(false);
            return;
        }

        await HoldAsync(async (lease, held) =>
        {
            // Built only now: the checkpoints it starts from are the ones the previous holder's sinks committed.
            var pipeline = _definition.Create(_services, _recipe);
            await using (pipeline.ConfigureAwait(false))
            {
                if (pipeline is StreamPipeline { Source: PostgresCdcSource source })
                {
                    source.BeforeConnect = lease.EnsureHeldAsync;
                    // Unfenced: a predecessor's sinks may still write a batch they held (docs/SCALING.md, "Tombstones and the low-water mark").
                    source.Settles = false;
                }

                if (_status is not null) { (pipeline as IStatusSource)?.AttachStatus(_status); }
                try
                {
                    await pipeline.RunAsync(afterLoad, held).ConfigureAwait(false);
                }
                finally
                {
                    // The slot's snapshots are shown by the worker running them (its metrics too, so a cluster's
                    // series are not doubled); the others show them in the cluster's view (StatusSnapshot.Snapshots).
                    if (_status is not null) { _status.Snapshots = null; }
                }
            }
        }, standBy: true, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the slot's lock when it is free and runs <paramref name="whileHeld"/> while this worker holds it; stands by
    /// again when the lock is lost; returns when <paramref name="ct"/> is cancelled or <paramref name="whileHeld"/> ends
    /// with the lock still held.
    /// </summary>
    private async Task HoldAsync(Func<PgSlotLease, CancellationToken, Task> whileHeld, bool standBy, CancellationToken ct)
    {
        var warm = PgSlotLease.WarmUpAsync(_options, _log, ct);
        Action<string?> condition = standBy ? c => _status?.Condition(c) : _ => { };
        while (!ct.IsCancellationRequested)
        {
            var waiting = $"stand-by for slot {_options.Slot}";
            condition(waiting);
            PgSlotLease lease;
            try
            {
                lease = await PgSlotLease.AcquireAsync(_options, Worker, _log, _services.Time, state => condition($"{waiting} ({state})"), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }

            bool lost;
            // Done before the source needs it (at once for the first worker to start, which then runs it cold).
            await warm.ConfigureAwait(false);
            await using (lease.ConfigureAwait(false))
            {
                try
                {
                    await lease.FenceAsync(ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException && !ct.IsCancellationRequested)
                {
                    // The lock's session failed before anything was read: stand by again.
                    StandByLog.StandingByAgain(_log, _options.Slot);
                    continue;
                }

                condition(null);
                using var run = CancellationTokenSource.CreateLinkedTokenSource(ct, lease.Lost);
                // The registry shows which worker reads the slot (status --cluster, the console's Workers page).
                _services.Worker?.Hold("slot", _options.Slot);
                try
                {
                    await whileHeld(lease, run.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (run.IsCancellationRequested)
                {
                    // A stop, or the lock lost: below.
                }
                finally
                {
                    _services.Worker?.Release("slot", _options.Slot);
                }

                lost = lease.Lost.IsCancellationRequested;
            }

            if (ct.IsCancellationRequested || !lost) { return; }
            StandByLog.StandingByAgain(_log, _options.Slot);
        }
    }

    /// <summary>
    /// <c>SLUICE_CLUSTER_CDC=jetstream</c> (the default): the slot's holder only reads the slot and publishes its changes
    /// to JetStream (<see cref="RelayAsync"/>); the steps and sinks run on every worker, reading that stream as the http
    /// source's cluster pipelines do (<see cref="ClusterHttpSource"/>). A failure of either side fails the pipeline.
    /// </summary>
    /// <remarks>
    /// The stream's partitions are always leased, one worker at a time, whatever <c>SLUICE_CLUSTER_ORDER</c> says for
    /// http streams: a change log's order per key matters to every sink (an update after its insert, a delete last, a
    /// truncate between the rows around it), and with one shared consumer two workers could apply one key's changes
    /// in either order. A CDC pipeline in cluster mode has the shared metadata store the leases need (ClusterRecipeCheck).
    /// </remarks>
    private async Task RunThroughJetStreamAsync(ClusterOptions cluster, Func<CancellationToken, Task> afterLoad, CancellationToken ct)
    {
        var factory = (PostgresCdcSourceFactory)_definition.Source;
        cluster = cluster with { KeyOrder = true };
        var mirrors = factory.KeyedSinks.Where(s => s.ChangeStreamOption is not null).ToList();
        var log = new CdcChangeLog(cluster, _recipe, _definition.Name, _options.Slot, _options.BatchRows, _options.BatchLinger, table => mirrors.Any(m => m.KeepsByKey(table)), _services.Logging);
        await using (log.ConfigureAwait(false))
        {
            // A lake sink tells the changes it committed already by their JetStream sequences, so its rows carry them.
            var sequences = _definition.Sinks.Any(s => s is SinkFactory<Connectors.Lake.LakeSinkOptions>);
            var source = new ClusterHttpSource(_services, _recipe, log.Options, cluster, new ChangeDecoder(sequences));
            var pipeline = new StreamPipeline(_services, _recipe, _definition.Name, source, _definition.Steps.Select(s => s.Create(_services)).ToList(), _definition.Sinks.Select(s => s.Create(_services)).ToList());
            await using (pipeline.ConfigureAwait(false))
            {
                if (_status is not null) { pipeline.AttachStatus(_status); }
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var consuming = pipeline.RunAsync(afterLoad, stop.Token);
                var relaying = HoldAsync((lease, held) => RelayAsync(factory, lease, log, held), standBy: false, stop.Token);
                var first = await Task.WhenAny(consuming, relaying).ConfigureAwait(false);
                await stop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await first.ConfigureAwait(false);
                }
                finally
                {
                    await Task.WhenAll(consuming, relaying).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Reached when JetStream stored a batch holding snapshot rows and its position is not yet recorded (tests SIGKILL
    /// the holder there, <see cref="Core.CrashPoint"/>): the next holder reads those rows again and publishes them with
    /// the same ids (<see cref="Core.Pipeline.SnapshotRows"/>).
    /// </summary>
    public const string SnapshotPublished = "cluster.cdc-snapshot-published";

    /// <summary>The relay's position in the shared store: the slot's changes up to it are stored in JetStream.</summary>
    private string RelayCheckpoint => $"pipeline:{_recipe}/{_definition.Name}:jetstream";

    /// <summary>
    /// The holder's work: reads the slot from the relay's position and publishes each batch; the batch's position is
    /// recorded and confirmed in the slot only once JetStream stored all of it (a quorum of replicas), never before.
    /// </summary>
    private async Task RelayAsync(PostgresCdcSourceFactory factory, PgSlotLease lease, CdcChangeLog log, CancellationToken ct)
    {
        var checkpoints = new Core.Metadata.CheckpointStore(_services.Metadata, _services.Time);
        var stored = checkpoints.Get(RelayCheckpoint) is { } text ? long.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : (long?)null;
        var source = (PostgresCdcSource)factory.CreateStream(_services);
        await using (source.ConfigureAwait(false))
        {
            source.BeforeConnect = lease.EnsureHeldAsync;
            CdcLog.Relaying(_log, _options.Slot, log.Log.StreamName);
            // The pipeline's status is the consumers' (ClusterHttpSource: the backlog is the events in JetStream); the
            // slot and its snapshots are the relay's, shown by this worker while it holds the slot.
            if (_status is { } status)
            {
                status.Slot = source.SlotForStatus;
                status.Snapshots = source.SnapshotsForStatus;
            }

            try
            {
                await foreach (var batch in source.ReadAsync(stored, ct).ConfigureAwait(false))
                {
                    await log.PublishAsync(batch, _services.Time, _log, c => _status?.Condition(c), ct).ConfigureAwait(false);
                    if (batch.Snapshots.Count > 0) { Core.CrashPoint.Reach(SnapshotPublished); }
                    if (batch.Position > (stored ?? long.MinValue))
                    {
                        checkpoints.Set(RelayCheckpoint, batch.Position.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        stored = batch.Position;
                    }

                    await source.AcknowledgeAsync(batch.Position, ct).ConfigureAwait(false);
                }
            }
            finally
            {
                if (_status is { } shown)
                {
                    shown.Slot = null;
                    shown.Snapshots = null;
                }
            }
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal static partial class StandByLog
{
    [LoggerMessage(44200, LogLevel.Warning, "Replication slot {Slot}: this worker lost its lock and stopped reading; standing by to take it again")]
    public static partial void StandingByAgain(ILogger logger, string slot);
}
