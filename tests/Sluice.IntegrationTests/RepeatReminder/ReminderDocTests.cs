using System.Diagnostics;
using System.Text.Json;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>
/// The walkthrough of docs/recipes/repeat-reminder.md, run as written: its curl lines against the recipe serving on a
/// free port, its <c>./sluice</c> lines as the real CLI on the same data folder, each block's output compared to what
/// the page shows (a <c>json</c> block: the last command's answer; a <c>text</c> block: every line).
/// </summary>
public sealed class ReminderDocTests
{
    [Fact]
    public async Task The_walkthrough_runs_as_written_and_prints_what_the_page_shows()
    {
        using var h = new ReminderHarness(recipe => recipe.Replace("schedule: \"*/5 * * * *\"", "", StringComparison.Ordinal), systemClock: true);
        using var smtp = new ThrowawaySmtp();
        await smtp.StartAsync();
        var host = new RecipeHost(h.Recipe, h.Services) { Http = new Serving.HttpServerOptions("127.0.0.1", 0) };
        await using var _ = host;
        using var stop = new CancellationTokenSource();
        var running = host.RunAsync(stop.Token);
        var address = await host.HttpStarted.WaitAsync(TimeSpan.FromSeconds(90));
        var env = new Dictionary<string, string>
        {
            ["URL"] = address.ToString().TrimEnd('/'),
            ["TOKEN"] = new TokenStore(h.Services.Metadata, h.Services.Time).Create("CLIENT-202311", TokenRole.Writer, "docs", null).Token,
            ["SLUICE_DATA"] = h.Engine.DataRoot,
            ["SLUICE_RECIPES"] = Path.GetDirectoryName(h.RecipeFolder)!,
            ["SMTP_HOST"] = "127.0.0.1",
            ["SMTP_PORT"] = smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["SMTP_TLS"] = "none",
        };

        var markdown = await File.ReadAllTextAsync(Path.Combine(TestPaths.RepoRoot, "docs", "recipes", "repeat-reminder.md"));
        var walkthrough = markdown[markdown.IndexOf("## Walkthrough", StringComparison.Ordinal)..markdown.IndexOf("## The rule", StringComparison.Ordinal)];
        var blocks = Blocks(walkthrough);
        var compared = 0;
        for (var i = 0; i < blocks.Count; i++)
        {
            if (blocks[i].Language != "sh") { continue; }
            var commands = blocks[i].Lines.Where(l => l.StartsWith("curl ", StringComparison.Ordinal) || (l.StartsWith("./sluice ", StringComparison.Ordinal) && !l.StartsWith("./sluice run", StringComparison.Ordinal))).ToList();
            var expected = i + 1 < blocks.Count && blocks[i + 1].Language is "json" or "text" ? blocks[i + 1] : default;
            var outputs = new List<string>();
            foreach (var command in commands)
            {
                outputs.Add(await RunAsync(command, env));
            }

            if (expected.Lines is null || commands.Count == 0) { continue; }
            // The pipeline lands pushed events a moment after the 202: a query may need to look again.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!Matches(expected, outputs) && DateTime.UtcNow < deadline && commands.All(c => c.Contains("query", StringComparison.Ordinal)))
            {
                await Task.Delay(200);
                outputs = [];
                foreach (var command in commands) { outputs.Add(await RunAsync(command, env)); }
            }

            Matches(expected, outputs).ShouldBeTrue($"{string.Join("\n", commands)}\nprinted:\n{string.Join("\n", outputs)}\nthe page shows:\n{string.Join("\n", expected.Lines)}");
            compared++;
        }

        compared.ShouldBeGreaterThanOrEqualTo(7);
        MailFolder.To(smtp.MailDir, "ann.attorney@example.com").Single().Subject.ShouldBe("Repeat client: follow up on case CASE-998221 (CLIENT-202311)");
        await stop.CancelAsync();
        await running;
    }

    private static bool Matches((string Language, List<string> Lines) expected, List<string> outputs)
    {
        if (expected.Language == "json")
        {
            try
            {
                using var a = JsonDocument.Parse(outputs[^1]);
                using var e = JsonDocument.Parse(string.Join("\n", expected.Lines));
                return JsonElement.DeepEquals(a.RootElement, e.RootElement);
            }
            catch (JsonException)
            {
                return false;
            }
        }

        var printed = string.Join("\n", outputs).Split('\n').Select(l => l.TrimEnd()).ToHashSet(StringComparer.Ordinal);
        return expected.Lines.Where(l => l.Length > 0).All(l => printed.Contains(l.TrimEnd()));
    }

    private static async Task<string> RunAsync(string command, IReadOnlyDictionary<string, string> env)
    {
        var line = command.StartsWith("./sluice ", StringComparison.Ordinal) ? $"dotnet '{TestPaths.CliAssembly}' {command["./sluice ".Length..]}" : command;
        var info = new ProcessStartInfo("bash", ["-c", line]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (k, v) in env) { info.Environment[k] = v; }
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.ShouldBe(0, $"{command}\n{output}\n{error}");
        return output.TrimEnd('\n');
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
