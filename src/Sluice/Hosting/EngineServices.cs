using Microsoft.Extensions.Logging;
using Sluice.Connectors.OpenLineage;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Lake;

namespace Sluice.Hosting;

/// <summary>The stores and clock of one data folder, built once per process and shared by every component.</summary>
public sealed class EngineServices : IEngineServices, IDisposable, IAsyncDisposable
{
    /// <param name="lineage">Where to send OpenLineage run events; null: none (the CLI passes <c>OPENLINEAGE_URL</c>'s).</param>
    /// <param name="shared">A cluster's shared metadata store in Postgres; null: the data folder's SQLite (the CLI passes <c>SLUICE_CLUSTER_POSTGRES</c>'s).</param>
    public EngineServices(DataDirectory data, TimeProvider time, ILoggerFactory logging, OpenLineageOptions? lineage = null, SharedMetadata? shared = null)
    {
        Data = data;
        Time = time;
        Logging = logging;
        Metadata = MetadataStore.For(data, shared);
        Lake = new LakeStore(data, Metadata, time);
        Query = new LakeQueryEngine(Lake);
        DeadLetters = new DeadLetterStore(Metadata, time);
        Status = new Core.Status.StatusBoard(time);
        Lineage = lineage is null ? null : new OpenLineageEmitter(lineage, time, logging);
    }

    public DataDirectory Data { get; }

    public MetadataStore Metadata { get; }

    public LakeStore Lake { get; }

    public LakeQueryEngine Query { get; }

    public DeadLetterStore DeadLetters { get; }

    public TimeProvider Time { get; }

    public ILoggerFactory Logging { get; }

    public HealthState Health { get; } = new();

    public Core.Status.StatusBoard Status { get; }

    public OpenLineageEmitter? Lineage { get; }

    /// <summary>The trace exporter this process runs (OTLP, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set); disposed last, which flushes it.</summary>
    public IDisposable? Tracing { get; init; }

    public RunningRecipes Running { get; } = new();

    /// <summary>The layers above Core, for components that see only <see cref="IEngineServices"/> (<see cref="EngineLayers"/>).</summary>
    public object? GetService(Type serviceType) =>
        serviceType == typeof(LakeStore) ? Lake
        : serviceType == typeof(LakeQueryEngine) ? Query
        : serviceType == typeof(OpenLineageEmitter) ? Lineage
        : serviceType == typeof(RunningRecipes) ? Running
        : serviceType == typeof(global::Sluice.Cluster.ClusterOptions) ? Cluster
        : serviceType == typeof(global::Sluice.Cluster.WorkerRegistry) ? Worker
        : null;

    /// <summary>Set by <c>sluice run --cluster</c> before the recipe's sources are created.</summary>
    public global::Sluice.Cluster.ClusterOptions? Cluster { get; set; }

    /// <summary>This worker's entry in the cluster's worker registry (<c>run --cluster</c>), where components publish what they hold.</summary>
    public global::Sluice.Cluster.WorkerRegistry? Worker { get; set; }

    /// <summary>
    /// <see cref="Dispose"/> off the socket thread: it waits for queued lineage events to be sent, whose socket the
    /// socket thread may be serving (inline socket completions, docs/ARCHITECTURE.md).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await Core.IO.InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
        Dispose();
    }

    public void Dispose()
    {
        // Queued run events go out before the logs close, so a dropped event is still reported.
        Lineage?.Dispose();
        Tracing?.Dispose();
        Logging.Dispose();
    }
}
