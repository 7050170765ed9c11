namespace Sluice.Core.Metadata;

/// <summary>
/// The recipes a data folder holds something of, so a command pointed at the wrong folder says so instead of
/// succeeding on nothing: a recipe that ran there (its run lock, taken by every <c>run</c> and <c>demo</c>), synced
/// its file types, took in a file, or ran a job.
/// </summary>
public static class RecipeFootprint
{
    private const string RunLockPrefix = "run-";

    /// <summary>The recipes of the folder, by name; none for a folder without a metadata store (nothing is created).</summary>
    public static IReadOnlySet<string> Recipes(DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (Directory.Exists(data.LocksRoot))
        {
            foreach (var file in Directory.EnumerateFiles(data.LocksRoot, RunLockPrefix + "*.lock"))
            {
                found.Add(Path.GetFileNameWithoutExtension(file)[RunLockPrefix.Length..]);
            }
        }

        if (!Path.Exists(data.MetadataPath)) { return found; }
        using var c = new MetadataStore(data).Open();
        foreach (var sql in new[]
        {
            "SELECT DISTINCT recipe FROM file_types",
            "SELECT DISTINCT recipe FROM ingested_files",
            "SELECT DISTINCT substr(job, 1, instr(job, '/') - 1) FROM job_runs WHERE instr(job, '/') > 1",
        })
        {
            using var cmd = c.Command(sql);
            using var r = cmd.ExecuteReader();
            while (r.Read()) { found.Add(r.GetString(0)); }
        }

        return found;
    }

    /// <summary>Lake tables or dead letters, whoever wrote them (a tool, a test, a recipe since renamed).</summary>
    private static bool HoldsData(DataDirectory data)
    {
        if (!Path.Exists(data.MetadataPath)) { return false; }
        using var c = new MetadataStore(data).Open();
        return c.Scalar<long>("SELECT (SELECT count(*) FROM lake_tables) + (SELECT count(*) FROM dead_letters)") > 0;
    }

    /// <summary>Throws, naming the folder and how to fill it, when it holds nothing of <paramref name="recipe"/> (or of any recipe, when null).</summary>
    public static void Require(DataDirectory data, string? recipe)
    {
        if (Missing(data, recipe) is { } message) { throw new SluiceException(message); }
    }

    /// <summary>What the folder lacks, naming it and how to fill it; null when it holds something of <paramref name="recipe"/> (of anything, when null).</summary>
    public static string? Missing(DataDirectory data, string? recipe)
    {
        ArgumentNullException.ThrowIfNull(data);
        var recipes = Recipes(data);
        if (recipe is null ? recipes.Count > 0 || HoldsData(data) : recipes.Contains(recipe)) { return null; }
        var name = recipe ?? "<recipe>";
        var what = recipe is null ? "holds nothing yet: no recipe has run there" : $"holds nothing of recipe '{recipe}': it has not run there" +
            (recipes.Count > 0 ? $" (it holds {string.Join(", ", recipes.Order(StringComparer.Ordinal))})" : "");
        return $"the data folder {data.Root} {what}. Fill it with 'sluice run {name} --once --data {data.Root}' " +
            $"(sample input first: 'sluice generate {name} --data {data.Root}'), or pass the --data (or SLUICE_DATA) that holds it.";
    }
}
