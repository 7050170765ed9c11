using Sluice.Recipes;
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

        var (_, errors) = new RecipeLoader(RecipeComponents.Create()).TryLoad(folder);

        var lines = errors.All.Select(e => e.ToString()).ToList();
        lines.ShouldContain(l => l.Contains("recipe.yaml:20: pipelines.ecommerce.source.max_event_bytes: expected a size such as 512KB", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("recipe.yaml:21: pipelines.ecommerce.source.colour: unknown key", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("pipelines.ecommerce.source.dedup: dedup key 'event_idd' must be a required text field", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("pipelines.ecommerce.sinks[0].zone: 'ana-lytics' must be letters, digits and '_'", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("ecommerce.v2.yaml:23: children.items.fields.qty: unknown field type 'integr'", StringComparison.Ordinal));
        new RecipeLoader(RecipeComponents.Create()).TryLoad(TestPaths.Recipe("tenant-analytics")).Errors.Any.ShouldBeFalse();
    }

    [Fact]
    public void Tenant_fairness_options_out_of_range_are_reported_with_their_key()
    {
        using var temp = new TempFolder();
        var folder = RecipeVariant.Create(temp, "tenant-analytics",
            ("max_event_bytes: 1MB", "max_event_bytes: 1MB\n      tenant_inflight_share: 1.5\n      min_body_rate: fast\n      body_rate_grace: 10m"));

        var lines = new RecipeLoader(RecipeComponents.Create()).TryLoad(folder).Errors.All.Select(e => e.ToString()).ToList();

        lines.ShouldContain(l => l.Contains("recipe.yaml:21: pipelines.ecommerce.source.tenant_inflight_share: must be between 0.01 and 1, got 1.5", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("recipe.yaml:22: pipelines.ecommerce.source.min_body_rate: expected a size", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains("pipelines.ecommerce.source.body_rate_grace: must be between 1s and 5m", StringComparison.Ordinal));
    }
}
