using Sluice.Connectors.Files;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.Recipes.Generators;

namespace Sluice.Recipes.Demo;

/// <summary>
/// The sales-warehouse part of <c>sluice demo</c>: drops a few days of generated customer and sales exports into the
/// recipe's folder (once per data folder: a later demo finds them loaded) and runs the recipe, whose after-load job
/// models the star schema and the marts on the embedded DuckDB warehouse; narrates each file and model run.
/// </summary>
public sealed class SalesWarehouseDemo(Recipe recipe, IEngineServices services, Action<string> say)
{
    /// <summary>What the printed <c>./sluice</c> lines add so that they work on this data folder (<c> --data DIR</c>).</summary>
    public string DataFlag { get; init; } = "";

    /// <summary>Days of exports the demo drops: enough for the SCD2 dimension to show moves, small enough to model in seconds.</summary>
    public const int Days = 3;

    public async Task RunAsync(CancellationToken ct)
    {
        var host = new RecipeHost(recipe, services);
        await using (host.ConfigureAwait(false))
        {
            var source = host.Sources.OfType<FilesSource>().First();
            source.Outcomes += o => say(o.Status == FileStatus.Landed
                ? $"sales   landed {o.File}: {o.Rows} rows{(o.Quarantined > 0 ? $", {o.Quarantined} quarantined" : "")}"
                : $"sales   {o.Status.ToString().ToLowerInvariant()} {o.File}: {o.Reason}");
            host.JobCompleted += (job, outcome) => say($"job     {job.FullName}: {outcome.Message}");
            source.Drop.EnsureCreated();
            if (!Directory.EnumerateFileSystemEntries(source.Drop.Processed).Any())
            {
                var wrote = new SalesWarehouseGenerator(source.Drop.Incoming, new SalesWarehouseGeneratorOptions { Days = Days, Customers = 200, SalesPerDay = 500 }, services.Time).Write();
                say($"sales-warehouse: wrote {wrote.Files.Count} daily exports ({wrote.CustomerRows} customer rows, {wrote.SalesRows} sales) into {source.Drop.Incoming}");
            }

            say($"""
                sales-warehouse: CSV exports -> cleaned staging -> SCD2 customers, sales facts -> marts, on DuckDB
                  ./sluice query{DataFlag} "SELECT * FROM mart.customer_ytd_spending ORDER BY ytd_spending DESC LIMIT 10"
                  ./sluice query{DataFlag} "SELECT customer_id, city, valid_from, valid_to FROM dw.dim_customer ORDER BY customer_id, valid_from LIMIT 10"
                  ./sluice models test sales-warehouse{DataFlag}
                  ./sluice job history{DataFlag} --job sales-warehouse/daily
                """);
            await host.RunAsync(ct).ConfigureAwait(false);
        }
    }
}
