using Sluice.IntegrationTests.Support;
using Sluice.Reference;
using YamlDotNet.RepresentationModel;

namespace Sluice.IntegrationTests.Docs;

/// <summary>
/// The options reference (docs/reference/) is what <c>sluice docs reference</c> makes from the components'
/// declarations: committed pages that differ from it, an option without a description, or a key a shipped recipe uses
/// that the reference does not show, all fail here, so the pages cannot drift from the code.
/// </summary>
public sealed class ReferencePagesTests
{
    private static readonly string Folder = Path.Combine(TestPaths.RepoRoot, "docs", "reference");

    [Fact]
    public void The_committed_reference_pages_are_what_the_command_generates()
    {
        var generated = ReferencePages.Generate(Sluice.Recipes.RecipeComponents.Create());
        var committed = Directory.EnumerateFiles(Folder, "*.md").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToList();
        committed.ShouldBe(generated.Keys.Order(StringComparer.Ordinal).ToList(), "docs/reference holds exactly the generated pages");
        foreach (var (file, text) in generated)
        {
            File.ReadAllText(Path.Combine(Folder, file)).ShouldBe(text, $"docs/reference/{file} differs from the code's declarations: run `./sluice docs reference`");
        }
    }

    [Fact]
    public void Every_option_of_every_component_is_declared_with_a_description()
    {
        var components = ReferencePages.Describe(Sluice.Recipes.RecipeComponents.Create());
        components.Count.ShouldBeGreaterThan(20);
        var problems = components.SelectMany(c =>
                c.Options.Where(o => string.IsNullOrWhiteSpace(o.Doc)).Select(o => $"{c.Page} {c.Name}: '{o.Key}' has no description (give its getter doc:)")
                    .Concat(c.Undeclared.Select(k => $"{c.Page} {c.Name}: '{k}' is looked at but read by no getter the description reached")))
            .ToList();
        problems.ShouldBeEmpty(string.Join("\n", problems));
        components.ShouldAllBe(c => c.Options.Count > 0, "every component declares its options");
    }

    /// <summary>A key read only on a branch the description does not take would be missing from the reference: the shipped recipes' keys must all be there.</summary>
    [Fact]
    public void Every_key_the_shipped_recipes_use_is_in_the_reference()
    {
        var known = ReferencePages.Describe(Sluice.Recipes.RecipeComponents.Create())
            .ToDictionary(c => (c.Page, c.Name), c => c.Options.Select(o => o.Key).Append("type").ToHashSet(StringComparer.Ordinal));
        var missing = new List<string>();
        void Check(string page, string name, YamlMappingNode node, string where)
        {
            if (!known.TryGetValue((page, name), out var keys)) { missing.Add($"{where}: no component '{name}' in {page}"); return; }
            foreach (var key in node.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value!).Where(k => !keys.Contains(k) && !(page == "jobs.md" && k == "schedule")))
            {
                missing.Add($"{where}: {page} {name}: '{key}'");
            }
        }

        foreach (var file in Directory.EnumerateFiles(TestPaths.Recipes, "recipe.yaml", SearchOption.AllDirectories))
        {
            var root = Load(file);
            foreach (var (_, job) in Entries(root, "jobs")) { Check("jobs.md", Type(job), job, file); }
            foreach (var (_, pipeline) in Entries(root, "pipelines"))
            {
                if (pipeline.Children.TryGetValue(new YamlScalarNode("source"), out var source) && source is YamlMappingNode s) { Check("sources.md", Type(s), s, file); }
                foreach (var (list, page) in new[] { ("steps", "steps.md"), ("sinks", "sinks.md") })
                {
                    if (!pipeline.Children.TryGetValue(new YamlScalarNode(list), out var items) || items is not YamlSequenceNode seq) { continue; }
                    foreach (var item in seq.Children.OfType<YamlMappingNode>()) { Check(page, Type(item), item, file); }
                }
            }
        }

        foreach (var file in Directory.EnumerateFiles(TestPaths.Recipes, "*.yaml", SearchOption.AllDirectories).Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == "filetypes"))
        {
            Check("file-types.md", "file type", Load(file), file);
        }

        missing.ShouldBeEmpty(string.Join("\n", missing));
    }

    /// <summary>
    /// The recipe's own files (recipe.yaml, schemas, mappings, store.yaml) against docs/reference/recipe.md: every key a
    /// shipped recipe writes is declared there, nested keys included; a component's options are checked above.
    /// </summary>
    [Fact]
    public void Every_key_of_the_shipped_recipe_files_is_in_the_recipe_reference()
    {
        var formats = ReferencePages.Describe(Sluice.Recipes.RecipeComponents.Create()).Where(c => c.Page == "recipe.md")
            .ToDictionary(c => c.Name, c => c.Options.Select(o => o.Key).ToHashSet(StringComparer.Ordinal));
        string[] components = ["pipelines.<name>.source", "pipelines.<name>.steps[]", "pipelines.<name>.sinks[]", "jobs.<name>"];
        var missing = new List<string>();
        var files = Directory.EnumerateFiles(TestPaths.Recipes, "*.yaml", SearchOption.AllDirectories)
            .Select(f => (File: f, Format: Path.GetFileName(f) switch
            {
                "recipe.yaml" => "recipe.yaml",
                "store.yaml" => "store.yaml",
                _ => Path.GetFileName(Path.GetDirectoryName(f)) switch { "schemas" => "schemas/<name>.yaml", "mappings" => "mappings/<name>.yaml", _ => null },
            }))
            .Where(f => f.Format is not null)
            .ToList();
        files.Select(f => f.Format).Distinct().Count().ShouldBe(4, "the shipped recipes hold every kind of file checked here");
        foreach (var (file, format) in files)
        {
            if (!formats.TryGetValue(format!, out var keys)) { missing.Add($"{file}: no '{format}' in recipe.md"); continue; }
            Walk(Load(file), "", keys, format == "recipe.yaml" ? components : [], file, missing);
        }

        missing.ShouldBeEmpty(string.Join("\n", missing));
    }

    /// <summary>
    /// The shipped model files (recipes/*/models/**: a SQL model's header, a clean model's YAML) against
    /// docs/reference/models.md, and every shipped test case (recipes/*/tests/*/case.yaml, and the init templates') against
    /// recipe.md's case.yaml: every key they write is declared, nested keys and list entries included.
    /// </summary>
    [Fact]
    public void Every_key_of_the_shipped_model_files_and_test_cases_is_in_the_reference()
    {
        var formats = ReferencePages.Describe(Sluice.Recipes.RecipeComponents.Create()).Where(c => c.Page is "models.md" or "recipe.md")
            .ToDictionary(c => c.Name, c => c.Options.Select(o => o.Key).ToHashSet(StringComparer.Ordinal));
        var templates = Path.Combine(TestPaths.RepoRoot, "src", "Sluice", "Templates");
        var files = Directory.EnumerateFiles(TestPaths.Recipes, "*.*", SearchOption.AllDirectories)
            .Select(f => (File: f, Format: Path.GetFileName(f) == "case.yaml" ? "tests/<case>/case.yaml"
                : !f.Contains($"{Path.DirectorySeparatorChar}models{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? null
                : Path.GetExtension(f) switch { ".sql" => "models/<schema>/<name>.sql", ".yaml" => "models/<schema>/<name>.yaml", _ => null }))
            .Concat(Directory.EnumerateFiles(templates, "case.yaml", SearchOption.AllDirectories).Select(f => (File: f, Format: (string?)"tests/<case>/case.yaml")))
            .Where(f => f.Format is not null)
            .ToList();
        files.GroupBy(f => f.Format).Select(g => (g.Key, g.Count())).ShouldAllBe(g => g.Item2 > 0);
        files.Select(f => f.Format).Distinct().Count().ShouldBe(3, "the shipped recipes hold SQL models, clean models and test cases");
        var missing = new List<string>();
        foreach (var (file, format) in files)
        {
            if (!formats.TryGetValue(format!, out var keys)) { missing.Add($"{file}: no '{format}' in docs/reference"); continue; }
            var text = File.ReadAllText(file);
            if (format!.EndsWith(".sql", StringComparison.Ordinal))
            {
                text = Sluice.Models.ModelFileParser.SplitHeader(text).Header ?? "";
                if (text.Trim().Length == 0) { continue; }
            }

            var yaml = new YamlStream();
            yaml.Load(new StringReader(text));
            Walk(yaml.Documents[0].RootNode, "", keys, [], file, missing);
        }

        missing.ShouldBeEmpty(string.Join("\n", missing));
    }

    /// <summary>
    /// Each key must be declared at its path (<c>a.b</c>), or as a name you choose (<c>a.&lt;name&gt;</c>, <c>a.&lt;field&gt;</c>);
    /// lists are <c>a[]</c>. A mapping the description declares nothing under (names to values) and the
    /// <paramref name="skip"/> paths are not gone into.
    /// </summary>
    private static void Walk(YamlNode node, string path, HashSet<string> keys, string[] skip, string file, List<string> missing)
    {
        if (skip.Contains(path)) { return; }
        if (node is YamlSequenceNode list)
        {
            foreach (var item in list.Children) { Walk(item, path + "[]", keys, skip, file, missing); }
            return;
        }

        if (node is not YamlMappingNode map || (path.Length > 0 && !keys.Any(k => k.StartsWith(path + ".", StringComparison.Ordinal)))) { return; }
        string Join(string key) => path.Length == 0 ? key : $"{path}.{key}";
        foreach (var (key, value) in map.Children)
        {
            var name = ((YamlScalarNode)key).Value!;
            var found = new[] { Join(name), Join("<name>"), Join("<field>") }.FirstOrDefault(k => keys.Contains(k) || keys.Any(x => x.StartsWith(k + ".", StringComparison.Ordinal)));
            if (found is null) { missing.Add($"{file}: '{Join(name)}' is not in docs/reference"); }
            else { Walk(value, found, keys, skip, file, missing); }
        }
    }

    private static YamlMappingNode Load(string file)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(file);
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static IEnumerable<(string Name, YamlMappingNode Map)> Entries(YamlMappingNode root, string key) =>
        root.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlMappingNode map
            ? map.Children.Where(c => c.Value is YamlMappingNode).Select(c => (((YamlScalarNode)c.Key).Value!, (YamlMappingNode)c.Value))
            : [];

    private static string Type(YamlMappingNode node) =>
        node.Children.TryGetValue(new YamlScalarNode("type"), out var t) && t is YamlScalarNode s ? s.Value ?? "" : "";
}
