using System.Text.Json;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// What one chaos test sent, had acknowledged, found landed, duplicated and lost, appended as one JSON line to
/// <c>artifacts/chaos/figures.jsonl</c> (docs/RELIABILITY.md quotes the last run). Written before the test's
/// assertions, so a failing run leaves its figures too.
/// </summary>
internal static class ChaosFigures
{
    private static readonly Lock Gate = new();

    public static string FilePath => Path.Combine(TestPaths.RepoRoot, "artifacts", "chaos", "figures.jsonl");

    public static void Record(string test, string recipe, string fault, long sent, long acknowledged, long landed, long duplicated, long lost, string? note = null)
    {
        var line = JsonSerializer.Serialize(new
        {
            at = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            test,
            recipe,
            fault,
            sent,
            acknowledged,
            landed,
            duplicated,
            lost,
            note,
        });
        lock (Gate)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
            File.AppendAllText(FilePath, line + "\n");
        }
    }
}
