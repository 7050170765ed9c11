using Sluice.Core.Recipes;

namespace Sluice.Recipes.Reminders;

public static class ReminderWarehouses
{
    /// <summary>The warehouse the store options name: PostgreSQL when a schema is configured, else the lake.</summary>
    public static IReminderWarehouse Create(IEngineServices services, ReminderStoreOptions options, string recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.PostgresSchema is { } schema
            ? new PostgresReminderWarehouse(services, schema, recipe)
            : new LakeReminderWarehouse(services, options.Zone);
    }
}
