using Sluice.Hosting;
using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Files;

public sealed class FileDropSmokeTests
{
    [Fact]
    public async Task Generated_files_land_in_the_lake_and_the_summary_is_built()
    {
        using var engine = new Engine();
        var recipe = Engine.LoadRecipe("vehicle-files");
        var host = new RecipeHost(recipe, engine.Services);
        await using (host)
        {
            var incoming = Path.Combine(engine.DataRoot, "vehicle-files", "incoming");
            new VehicleFilesGenerator(incoming, new VehicleFilesGeneratorOptions { Files = 4, EventsPerFile = 30, Seed = 7 }, TimeProvider.System).WriteRound();

            var landed = await host.RunOnceAsync(CancellationToken.None);

            landed.ShouldBe(4);
            engine.Count("SELECT count(*) FROM raw_data.vehicle_events").ShouldBe(60);
            engine.Count("SELECT count(*) FROM raw_data.vehicle_status").ShouldBe(60);
            engine.Count("SELECT count(*) FROM reports.daily_summary").ShouldBe(
                engine.Count("SELECT count(*) FROM (SELECT DISTINCT vehicle_id, CAST(event_time AS DATE) FROM raw_data.vehicle_events)"));
            Directory.GetFiles(Path.Combine(engine.DataRoot, "vehicle-files", "processed")).Length.ShouldBe(4);
        }
    }
}
