using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

/// <summary>The curl examples of docs/recipes/tenant-analytics.md run as written, and print what the page shows.</summary>
public sealed class RecipeDocTests
{
    [Fact]
    public async Task The_curl_examples_in_the_recipe_page_work_and_answer_what_the_page_shows()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var env = new Dictionary<string, string>
        {
            ["URL"] = server.Address.ToString().TrimEnd('/'),
            ["WRITER"] = server.Token("acme", TokenRole.Writer),
            ["READER"] = server.Token("acme", TokenRole.Reader),
            ["ADMIN"] = server.Token("ops", TokenRole.Admin),
        };
        var blocks = Blocks(await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "docs", "recipes", "tenant-analytics.md")));
        var ran = 0;
        var compared = 0;
        for (var i = 0; i < blocks.Count; i++)
        {
            if (blocks[i].Language != "sh") { continue; }
            var commands = blocks[i].Lines.Where(l => l.StartsWith("curl ", StringComparison.Ordinal) || l.StartsWith("printf ", StringComparison.Ordinal)).ToList();
            var expected = i + 1 < blocks.Count && blocks[i + 1].Language == "json" ? string.Join("\n", blocks[i + 1].Lines) : null;
            string last = "";
            foreach (var command in commands)
            {
                var (code, output) = await BashAsync(command, env);
                code.ShouldBe(0, $"{command}\n{output}");
                if (command.StartsWith("curl ", StringComparison.Ordinal)) { output.ShouldNotBeNullOrWhiteSpace(command); }
                last = output;
                ran++;
            }

            if (expected is null) { continue; }
            // The pipeline commits asynchronously: a query may need a moment before it shows what was just ingested.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (!SameJson(last, expected) && commands[^1].Contains("/v1/metrics", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
                last = (await BashAsync(commands[^1], env)).Output;
            }

            SameJson(last, expected).ShouldBeTrue($"{commands[^1]}\nprinted {last}\nthe page shows {expected}");
            compared++;
        }

        ran.ShouldBeGreaterThan(8);
        compared.ShouldBeGreaterThanOrEqualTo(4);
        engine.Services.DeadLetters.Count("http:tenant-analytics/ecommerce").ShouldBe(2);
    }

    private static bool SameJson(string actual, string expected)
    {
        try
        {
            using var a = JsonDocument.Parse(actual);
            using var e = JsonDocument.Parse(expected);
            return JsonElement.DeepEquals(a.RootElement, e.RootElement);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static async Task<(int Code, string Output)> BashAsync(string command, IReadOnlyDictionary<string, string> env)
    {
        var info = new ProcessStartInfo("bash", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (k, v) in env) { info.Environment[k] = v; }
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output + error);
    }

    private static List<(string Language, List<string> Lines)> Blocks(string markdown)
    {
        var blocks = new List<(string, List<string>)>();
        List<string>? current = null;
        var language = "";
        foreach (var line in markdown.Split('\n'))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                if (current is null) { language = line[3..].Trim(); current = []; }
                else { blocks.Add((language, current)); current = null; }
                continue;
            }

            current?.Add(line.TrimEnd());
        }

        return blocks;
    }
}
