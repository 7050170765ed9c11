using System.Reflection;
using Sluice.Core.Status;
using Sluice.Hosting;

namespace Sluice.Cluster;

/// <summary>
/// What makes a <c>run --cluster</c> process a worker the others can see: its entry in the shared worker registry,
/// beating with its health (red while a component fails or a pipeline stopped) and the consumer lag of its pipelines,
/// and the registry's workers and the cluster's CDC snapshot requests in its own <c>/api/status</c>.
/// </summary>
public static class ClusterWorker
{
    /// <summary>Registers the worker of <paramref name="recipe"/> on <paramref name="services"/>' shared store (refused when its id is live elsewhere).</summary>
    public static WorkerRegistry Join(EngineServices services, string recipe, int port)
    {
        ArgumentNullException.ThrowIfNull(services);
        var version = typeof(ClusterWorker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "dev";
        var info = new WorkerInfo(WorkerIdentity.Of(services.Data, Environment.GetEnvironmentVariable), Environment.MachineName, Environment.ProcessId, port, recipe, version);
        var registry = new WorkerRegistry(services.Metadata, services.Time, info, services.Logging);
        registry.Register();
        services.Worker = registry;
        services.Status.Workers = () => WorkerRegistry.List(services.Metadata, services.Time);
        // Any worker's status shows the cluster's CDC snapshots, whichever worker holds the slot and runs them.
        services.Status.Snapshots = () => Connectors.Postgres.PgSnapshotRequests.Views(services, Connectors.Postgres.PostgresCdcSource.SnapshotsShown);
        return registry;
    }

    /// <summary>Beats until <paramref name="ct"/> is cancelled.</summary>
    public static Task BeatAsync(WorkerRegistry registry, EngineServices services, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return registry.RunAsync(() => Observe(services), ct);
    }

    /// <summary>The last word of a worker that ends: stopped after a clean stop; red with why when it ends failing (it exits non-zero).</summary>
    public static void Stop(WorkerRegistry registry, string? failure)
    {
        ArgumentNullException.ThrowIfNull(registry);
        try
        {
            if (failure is null) { registry.Leave(); }
            else { registry.Heartbeat("exited: " + failure, []); }
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            // Ending with the store gone: the others see the worker lost once its heartbeat is old.
        }
    }

    /// <summary>The worker's health (the first failing component or stopped pipeline, else green) and its pipelines' consumer lag.</summary>
    public static (string? Red, IReadOnlyList<PipelineLag> Lags) Observe(EngineServices services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var pipelines = services.Status.Pipelines;
        var red = services.Health.Failures.Select(f => $"{f.Component}: {f.Reason}").FirstOrDefault()
            ?? pipelines.Where(p => p.State == "failed").Select(p => $"pipeline {p.QualifiedName} failed").FirstOrDefault();
        var lags = pipelines.Select(p => (p.QualifiedName, Backlog: p.Backlog?.Invoke()))
            .Where(p => p.Backlog is { Unit: "events in JetStream" })
            .Select(p => new PipelineLag(p.QualifiedName, p.Backlog!.Value)).ToList();
        return (red, lags);
    }
}
