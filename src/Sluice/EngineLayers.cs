using Sluice.Alerts;
using Sluice.Connectors.OpenLineage;
using Sluice.Core.Recipes;
using Sluice.Hosting;
using Sluice.Lake;

namespace Sluice;

/// <summary>
/// The engine's layers above Core, reached from Core's contracts: <see cref="IEngineServices"/> names no lake and no
/// host, and <see cref="Recipe"/> no section type, so Core imports nothing above it. In the root namespace, so every
/// <c>Sluice.*</c> namespace sees these members without a using.
/// </summary>
public static class EngineLayers
{
    extension(IEngineServices services)
    {
        /// <summary>The lake of the data folder (Parquet files and their manifest).</summary>
        public LakeStore Lake => services.GetService(typeof(LakeStore)) as LakeStore
            ?? throw new InvalidOperationException("these engine services have no lake");

        /// <summary>DuckDB over the lake.</summary>
        public LakeQueryEngine Query => services.GetService(typeof(LakeQueryEngine)) as LakeQueryEngine
            ?? throw new InvalidOperationException("these engine services have no query engine");

        /// <summary>OpenLineage run events for job and model runs; null unless <c>OPENLINEAGE_URL</c> is set.</summary>
        public OpenLineageEmitter? Lineage => services.GetService(typeof(OpenLineageEmitter)) as OpenLineageEmitter;

        /// <summary>The recipe hosts running in this process, for the console's operations; null where nothing registers them.</summary>
        public RunningRecipes? Running => services.GetService(typeof(RunningRecipes)) as RunningRecipes;

        /// <summary>Cluster mode (<c>sluice run --cluster</c>): the shared log's settings; null for a single process.</summary>
        public global::Sluice.Cluster.ClusterOptions? Cluster => services.GetService(typeof(global::Sluice.Cluster.ClusterOptions)) as global::Sluice.Cluster.ClusterOptions;

        /// <summary>This worker's registry entry in cluster mode (<c>WorkerRegistry.Hold</c> and <c>Release</c> publish what it holds); null in a single process.</summary>
        public global::Sluice.Cluster.WorkerRegistry? Worker => services.GetService(typeof(global::Sluice.Cluster.WorkerRegistry)) as global::Sluice.Cluster.WorkerRegistry;
    }
}

/// <summary>A recipe's sections the engine registers (<see cref="Components"/>), as properties of <see cref="Recipe"/>.</summary>
public static class RecipeSections
{
    extension(Recipe recipe)
    {
        /// <summary>The recipe's <c>alerts:</c> section, or null when it declares none.</summary>
        public AlertsOptions? Alerts => recipe.Sections.GetValueOrDefault(AlertsSection.SectionName) as AlertsOptions;
    }
}
