using System.Collections.Frozen;
using System.Reflection;

namespace Sluice.Serving.Console;

/// <summary>The console's static files, embedded in the engine assembly under <c>console/</c> (from <c>wwwroot/</c>).</summary>
internal static class ConsoleAssets
{
    private const string Prefix = "console/";

    private static readonly FrozenDictionary<string, byte[]> Files = Load();

    /// <summary>The file at a path under wwwroot (<c>app.js</c>, <c>vendor/uPlot.min.css</c>), or null.</summary>
    public static byte[]? Find(string path) => Files.GetValueOrDefault(path);

    public static string Text(string path) => System.Text.Encoding.UTF8.GetString(Find(path) ?? throw new InvalidOperationException($"console asset '{path}' is not embedded"));

    public static string ContentType(string path) => Path.GetExtension(path) switch
    {
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".html" => "text/html; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        _ => "text/plain; charset=utf-8",
    };

    private static FrozenDictionary<string, byte[]> Load()
    {
        var assembly = typeof(ConsoleAssets).Assembly;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            files[name[Prefix.Length..].Replace('\\', '/')] = copy.ToArray();
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
