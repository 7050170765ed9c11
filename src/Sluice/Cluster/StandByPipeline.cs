using Microsoft.Extensions.Logging;
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
        var warm = PgSlotLease.WarmUpAsync(_options, _log, ct);
        while (!ct.IsCancellationRequested)
        {
            var standBy = $"stand-by for slot {_options.Slot}";
            _status?.Condition(standBy);
            PgSlotLease lease;
            try
            {
                lease = await PgSlotLease.AcquireAsync(_options, Worker, _log, _services.Time, state => _status?.Condition($"{standBy} ({state})"), ct).ConfigureAwait(false);
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

                _status?.Condition(null);
                // Built only now: the checkpoints it starts from are the ones the previous holder's sinks committed.
                var pipeline = _definition.Create(_services, _recipe);
                await using (pipeline.ConfigureAwait(false))
                {
                    if (pipeline is StreamPipeline { Source: PostgresCdcSource source }) { source.BeforeConnect = lease.EnsureHeldAsync; }
                    if (_status is not null) { (pipeline as IStatusSource)?.AttachStatus(_status); }
                    using var run = CancellationTokenSource.CreateLinkedTokenSource(ct, lease.Lost);
                    try
                    {
                        await pipeline.RunAsync(afterLoad, run.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (run.IsCancellationRequested)
                    {
                        // A stop, or the lock lost: below.
                    }
                }

                lost = lease.Lost.IsCancellationRequested;
            }

            if (ct.IsCancellationRequested || !lost) { return; }
            StandByLog.StandingByAgain(_log, _options.Slot);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal static partial class StandByLog
{
    [LoggerMessage(44200, LogLevel.Warning, "Replication slot {Slot}: this worker lost its lock and stopped reading; standing by to take it again")]
    public static partial void StandingByAgain(ILogger logger, string slot);
}
