using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Files;
using Sluice.Connectors.Http;
using Sluice.Connectors.HttpIngest;
using Sluice.Connectors.Lake;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Redis;
using Sluice.Connectors.Salesforce;
using Sluice.Core.Recipes;
using Sluice.Jobs.DailySummary;
using Sluice.Jobs.Reminders;
using Sluice.Models;
using Sluice.Reminders.Pipeline;
using Sluice.Transforms.Dedup;
using Sluice.Transforms.Enrichment;
using Sluice.Transforms.Filter;
using Sluice.Transforms.Flatten;
using Sluice.Transforms.HashPii;
using Sluice.Transforms.Lookup;
using Sluice.Transforms.Map;

namespace Sluice;

/// <summary>Every built-in source and job type, by the name recipes use. A new connector adds one line here.</summary>
public static class Components
{
    public static ComponentRegistry Create() => new ComponentRegistry()
        .Add(new FilesSourceType())
        .Add(new HttpIngestSourceType())
        .Add(new PostgresCdcSourceType())
        .Add(new EngagementEnrichStepType())
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
        .Add(new AttorneyEventsStepType())
        .Add(new ReminderStoreSinkType())
        .Add(new DailySummaryJobType())
        .Add(new PostgresBackfillJobType())
        .Add(new SendRemindersJobType())
        .Add(new ModelsJobType());
}
