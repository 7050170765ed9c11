using System.Reflection;
using System.Text.RegularExpressions;

namespace Sluice.Templates;

/// <summary>
/// The starting points of <c>sluice init</c>: each a runnable recipe with fixtures (<c>tests/basic</c>), embedded from
/// <c>src/Sluice/Templates/&lt;template&gt;/</c>. <c>{{name}}</c> becomes the recipe's name and <c>{{ident}}</c> the same
/// with <c>_</c> for <c>-</c> (a SQL identifier: schema, slot, publication, ClickHouse database).
/// </summary>
public static partial class RecipeTemplates
{
    private const string Prefix = "Sluice.Templates/";

    public static IReadOnlyList<string> Names { get; } = Resources().Select(r => r[Prefix.Length..].Split('/')[0]).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>Writes the template as <paramref name="folder"/>/<paramref name="name"/>; never over anything already there.</summary>
    /// <returns>The recipe's folder and how many files were written.</returns>
    public static (string Folder, int Files) Write(string template, string name, string folder)
    {
        if (!Names.Contains(template, StringComparer.Ordinal))
        {
            throw new Core.SluiceException($"no template '{template}' (templates: {string.Join(", ", Names)})");
        }

        if (!RecipeName().IsMatch(name))
        {
            throw new Core.SluiceException($"'{name}' is not a recipe name: lower-case letters, digits and '-', starting with a letter, at most 40 characters");
        }

        var target = Path.GetFullPath(Path.Combine(folder, name));
        if (Directory.Exists(target) || File.Exists(target))
        {
            throw new Core.SluiceException($"{target} exists already: init writes only into a new folder (pick another name or --dir)");
        }

        var files = Resources().Where(r => r.StartsWith($"{Prefix}{template}/", StringComparison.Ordinal)).ToList();
        foreach (var resource in files)
        {
            var relative = resource[$"{Prefix}{template}/".Length..];
            using var stream = typeof(RecipeTemplates).Assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd().Replace("{{name}}", name, StringComparison.Ordinal).Replace("{{ident}}", name.Replace('-', '_'), StringComparison.Ordinal);
            var path = Path.Combine(target, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
        }

        return (target, files.Count);
    }

    private static IEnumerable<string> Resources() =>
        typeof(RecipeTemplates).Assembly.GetManifestResourceNames().Where(r => r.StartsWith(Prefix, StringComparison.Ordinal));

    // Names become folder names, PostgreSQL schemas, slots and ClickHouse databases (with '_'): kept to what all accept.
    [GeneratedRegex("^[a-z][a-z0-9-]{0,39}$")]
    private static partial Regex RecipeName();
}
