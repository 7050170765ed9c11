using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.TenantAnalytics;

public sealed class RecipeValidationTests
{
    [Fact]
    public void Every_configuration_problem_is_reported_with_file_line_and_key()
    {
        using var temp = new TempFolder();
        var folder = RecipeVariant.Create(temp, "tenant-analytics",
            ("max_event_bytes: 1MB", "max_event_bytes: lots\n      colour: blue"), ("key: event_id", "key: event_idd"), ("zone: analytics", "zone: ana-lytics"));
        var schema = Path.Combine(folder, "schemas", "ecommerce.v2.yaml");
        File.WriteAllText(schema, File.ReadAllText(schema).Replace("  qty: integer", "  qty: integr", StringComparison.Ordinal));

        var (_, errors) = new RecipeLoader(Components.Create()).TryLoad(folder);

        var lines = errors.All.Select(e => e.ToString()).ToList();
        lines.ShouldContain(l => l.Contains("recipe.yaml:20: pipelines.ecommerce.source.max_event_bytes: expected a size such as 512KB", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("recipe.yaml:21: pipelines.ecommerce.source.colour: unknown key", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("pipelines.ecommerce.source.dedup: dedup key 'event_idd' must be a required text field", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("pipelines.ecommerce.sinks[0].zone: 'ana-lytics' must be letters, digits and '_'", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("ecommerce.v2.yaml:23: children.items.fields.qty: unknown field type 'integr'", StringComparison.Ordinal));
        new RecipeLoader(Components.Create()).TryLoad(TestPaths.Recipe("tenant-analytics")).Errors.Any.ShouldBeFalse();
    }
}
