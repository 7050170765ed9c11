using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.Files;

/// <summary>
/// The file-type catalog of a data folder, kept in the metadata store so that a new type takes effect without a rebuild
/// or a restart. A recipe's shipped YAML types are synchronised at start; <c>sluice filetypes add</c> adds more.
/// </summary>
public sealed class FileTypeCatalog(MetadataStore store, TimeProvider time)
{
    public const string FromRecipe = "recipe";
    public const string FromCli = "cli";

    /// <summary>Loads every <c>*.yaml</c> of a recipe's file-type folder, reporting problems into <paramref name="errors"/>.</summary>
    public static IReadOnlyList<FileType> LoadFolder(string folder, ConfigErrors errors)
    {
        if (!Directory.Exists(folder))
        {
            return [];
        }

        var types = new List<FileType>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.yaml").Concat(Directory.EnumerateFiles(folder, "*.yml")).Order(StringComparer.Ordinal))
        {
            var type = FileTypeParser.ParseFile(file, errors);
            if (type is null) { continue; }
            if (types.Any(t => t.Name == type.Name))
            {
                errors.Add(Path.GetRelativePath(Directory.GetCurrentDirectory(), file), 1, "name", $"file type '{type.Name}' is defined twice");
                continue;
            }

            types.Add(type);
        }

        return types;
    }

    /// <summary>Stores the recipe's own types; a type added with the CLI keeps precedence over a shipped one of the same name.</summary>
    public void SyncRecipeTypes(string recipe, IReadOnlyList<FileType> types)
    {
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        foreach (var t in types)
        {
            c.Execute(
                "INSERT INTO file_types(recipe, name, definition, origin, updated_at) VALUES ($r, $n, $d, $o, $t) " +
                "ON CONFLICT(recipe, name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at WHERE file_types.origin = $o",
                tx, ("$r", recipe), ("$n", t.Name), ("$d", FileTypeParser.ToJson(t)), ("$o", FromRecipe), ("$t", time.GetUtcNow().Iso()));
        }

        tx.Commit();
    }

    public void Add(string recipe, FileType type)
    {
        using var c = store.Connect();
        c.Execute(
            "INSERT INTO file_types(recipe, name, definition, origin, updated_at) VALUES ($r, $n, $d, $o, $t) " +
            "ON CONFLICT(recipe, name) DO UPDATE SET definition = excluded.definition, origin = excluded.origin, updated_at = excluded.updated_at",
            null, ("$r", recipe), ("$n", type.Name), ("$d", FileTypeParser.ToJson(type)), ("$o", FromCli), ("$t", time.GetUtcNow().Iso()));
    }

    public bool Remove(string recipe, string name)
    {
        using var c = store.Connect();
        return c.Execute("DELETE FROM file_types WHERE recipe = $r AND name = $n", null, ("$r", recipe), ("$n", name)) > 0;
    }

    public IReadOnlyList<FileType> All(string recipe)
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT definition, origin FROM file_types WHERE recipe = $r ORDER BY name", null, ("$r", recipe));
        using var r = cmd.ExecuteReader();
        var list = new List<FileType>();
        while (r.Read())
        {
            list.Add(FileTypeParser.FromJson(r.GetString(0), r.GetString(1)));
        }

        return list;
    }

    /// <summary>The type whose pattern matches the name; the most specific (longest) pattern wins when several match.</summary>
    public static FileType? Match(IReadOnlyList<FileType> types, string fileName) =>
        types.Where(t => t.Matches(fileName)).OrderByDescending(t => t.Pattern.Length).ThenBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault();
}
