using Sluice.Core;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Files;

public sealed class DropFolderFailureTests
{
    [Fact]
    public async Task A_drop_folder_that_cannot_be_read_ends_the_run_naming_it()
    {
        using var engine = new Engine();
        await using var host = new RecipeHost(Engine.LoadRecipe("vehicle-files"), engine.Services);
        var incoming = Path.Combine(engine.DataRoot, "vehicle-files", "incoming");
        var run = host.RunAsync(CancellationToken.None);
        Directory.Delete(incoming);

        // The daily schedule would keep the run going until stopped; the source's failure ends it.
        var error = await Should.ThrowAsync<ComponentFailedException>(() => run.WaitAsync(TimeSpan.FromSeconds(60)));
        error.Component.ShouldBe("pipeline 'ingest' (files)");
        error.Reason.ShouldContain($"the drop folder {incoming} cannot be read");
    }
}
