using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.PipelineTests;

/// <summary>
/// <c>sluice init &lt;name&gt; --from &lt;template&gt;</c> writes a recipe that <c>sluice validate</c> accepts and whose
/// own fixtures pass <c>sluice test</c> against the servers here (PostgreSQL, ClickHouse).
/// </summary>
public sealed class InitTemplateTests
{
    [Theory]
    [InlineData("files-to-lake")]
    [InlineData("http-to-postgres")]
    [InlineData("pull-to-clickhouse")]
    [InlineData("cdc-mirror")]
    public async Task A_new_recipe_validates_and_passes_its_own_fixtures(string template)
    {
        using var folder = new TempFolder();
        // A name of its own per run: a CDC slot is named after the recipe, and slots are per server.
        var name = $"my-{template[..4]}-{Guid.NewGuid().ToString("N")[..6]}";

        var (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "init", name, "--from", template, "--dir", folder.Path);
        code.ShouldBe(0, $"{stdout}\n{stderr}");
        stdout.ShouldContain($"wrote {name} (");
        var recipe = folder.Sub(name);
        File.Exists(Path.Combine(recipe, "tests", "basic", "case.yaml")).ShouldBeTrue();

        (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "validate", recipe);
        code.ShouldBe(0, $"{stdout}\n{stderr}");
        stderr.ShouldContain($"{name}: valid");

        (code, stdout, stderr) = await SluiceProcess.RunAsync(folder.Path, "test", recipe);
        code.ShouldBe(0, $"{stdout}\n{stderr}");
        stdout.ShouldContain($"{name}/basic: ok");
    }

    [Fact]
    public async Task Init_never_writes_over_a_folder_and_refuses_unknown_templates_and_names()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Sub("taken"));

        var (code, _, stderr) = await SluiceProcess.RunAsync(folder.Path, "init", "taken", "--from", "files-to-lake", "--dir", folder.Path);
        code.ShouldBe(1);
        stderr.ShouldContain("exists already: init writes only into a new folder");

        (code, _, stderr) = await SluiceProcess.RunAsync(folder.Path, "init", "Bad_Name", "--from", "files-to-lake", "--dir", folder.Path);
        code.ShouldBe(1);
        stderr.ShouldContain("'Bad_Name' is not a recipe name");

        (code, _, stderr) = await SluiceProcess.RunAsync(folder.Path, "init", "ok", "--from", "kafka-to-lake", "--dir", folder.Path);
        code.ShouldBe(1);
        stderr.ShouldContain("kafka-to-lake");
        Directory.GetDirectories(folder.Path).Select(Path.GetFileName).ShouldBe(["taken"]);
    }
}
