using Sluice.Connectors.Files;
using Sluice.Connectors.HttpIngest;
using Sluice.Connectors.Lake;
using Sluice.Connectors.Postgres;
using Sluice.Connectors.Salesforce;
using Sluice.Core.Recipes;
using Sluice.Jobs.DailySummary;
using Sluice.Jobs.Reminders;
using Sluice.Reminders.Pipeline;

namespace Sluice;

/// <summary>Every built-in source and job type, by the name recipes use. A new connector adds one line here.</summary>
public static class Components
{
    public static ComponentRegistry Create() => new ComponentRegistry()
        .Add(new FilesSourceType())
        .Add(new HttpIngestSourceType())
        .Add(new LakeSinkType())
        .Add(new PostgresSinkType())
        .Add(new PostgresPullSourceType())
        .Add(new SalesforceSourceType())
        .Add(new DailySummaryJobType())
        .Add(new SendRemindersJobType())
        .Add(new AttorneyEventsStepType())
        .Add(new ReminderStoreSinkType());
}
