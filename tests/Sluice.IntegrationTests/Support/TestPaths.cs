namespace Sluice.IntegrationTests.Support;

/// <summary>Where the repository, its recipes and the built CLI are, seen from a test run.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Recipes => Path.Combine(RepoRoot, "recipes");

    public static string Recipe(string name) => Path.Combine(Recipes, name);

    /// <summary>The CLI assembly copied next to the tests by the project reference.</summary>
    public static string CliAssembly => Path.Combine(AppContext.BaseDirectory, "sluice.dll");

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Sluice.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Sluice.slnx not found above " + AppContext.BaseDirectory);
    }
}
