using Sluice.Alerts;
using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Files;
using Sluice.Connectors.Http;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Lake;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Redis;
using Sluice.Connectors.Salesforce;
using Sluice.Core.Recipes;
using Sluice.Jobs.DailySummary;
using Sluice.Models;
using Sluice.Transforms.Dedup;
using Sluice.Transforms.Filter;
using Sluice.Transforms.Flatten;
using Sluice.Transforms.HashPii;
using Sluice.Transforms.Lookup;
using Sluice.Transforms.Map;

namespace Sluice;

/// <summary>
/// Every built-in source, step, sink and job type of the engine, by the name recipes use, and the recipe sections it
/// knows. A new connector adds one line here; a recipe's own components register themselves on top
/// (<c>Sluice.Recipes.RecipeComponents.Register</c>, called by the CLI).
/// </summary>
public static class Components
{
    public static ComponentRegistry Create() => new ComponentRegistry()
        .Add(new FilesSourceType())
        .Add(new HttpIngestSourceType())
        .Add(new PostgresCdcSourceType())
        .Add(new MapStepType())
        .Add(new FilterStepType())
        .Add(new LookupStepType())
        .Add(new FlattenStepType())
        .Add(new HashPiiStepType())
        .Add(new DedupStepType())
        .Add(new LakeSinkType())
        .Add(new PostgresSinkType())
        .Add(new ClickHouseSinkType())
        .Add(new RedisRealtimeSinkType())
        .Add(new RedisSinkType())
        .Add(new HttpSinkType())
        .Add(new PostgresPullSourceType())
        .Add(new SalesforceSourceType())
        .Add(new DailySummaryJobType())
        .Add(new PostgresBackfillJobType())
        .Add(new ModelsJobType())
        .Add(new AlertsSection())
        .Add(new Cluster.ClusterSection());
}
