using System.Text.Json;
using Xunit.Abstractions;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Docs;

/// <summary>
/// Every command block of README.md and docs/**, run as written and in order, one page per fresh folder (and data
/// folder), with the test servers' variables set as <c>eval "$(scripts/services.sh env)"</c> sets them. Each command
/// must exit 0; what the page shows it prints must be printed: a <c>console</c> block's lines after each <c>$</c>
/// command, a <c>json</c> block right after a command block (the last command's answer), a <c>text</c> block there
/// (every line among the block's output); <c>...</c> stands for any text. A block may be left out only with
/// <c>&lt;!-- docs-test: skip: why --&gt;</c> right before it.
/// </summary>
public sealed class DocsRunAsWrittenTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);

    /// <summary>Left-out blocks stay the exception: a new one has to be argued here as well as on the page.</summary>
    private const int MostSkippedBlocks = 6;

    public static TheoryData<string> Pages()
    {
        var data = new TheoryData<string>();
        foreach (var page in AllPages().Where(p => DocBlocks.Read(TestPaths.RepoRoot, p).Any(b => b.IsCommands && b.SkipReason is null))) { data.Add(page); }
        return data;
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public async Task Every_command_block_runs_as_written(string page)
    {
        var blocks = DocBlocks.Read(TestPaths.RepoRoot, page);
        // A database of its own, as a reader's would be: what another test left in the shared one (a schema named after
        // the user, a recipe's tables) cannot make a page pass or fail.
        await using var database = await DocDatabase.CreateAsync();
        await using var shell = new DocShell(new Dictionary<string, string> { ["PGDATABASE"] = database.Name });
        var ran = 0;
        for (var b = 0; b < blocks.Count; b++)
        {
            var block = blocks[b];
            if (!block.IsCommands) { continue; }
            if (block.SkipReason is not null)
            {
                output.WriteLine($"{block.Where}: left out: {block.SkipReason}");
                continue;
            }

            var commands = DocBlocks.Commands(block);
            var shown = b + 1 < blocks.Count && block.Language != "console" && blocks[b + 1].Language is "json" or "text" && blocks[b + 1].Line == block.Line + block.Lines.Count + 2
                ? blocks[b + 1] : null;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                var printed = new List<string>();
                var problem = await RunBlockAsync(shell, commands, printed);
                problem ??= shown is null ? null : Compare(shown, printed);
                if (problem is null) { break; }
                // A read right after a push may come before the pipeline has landed it: a block that only reads looks again.
                if (DateTime.UtcNow > deadline || !commands.All(c => ReadsOnly(c.Text)))
                {
                    await shell.StopAllAsync(CommandTimeout);
                    Assert.Fail(problem);
                }

                await Task.Delay(250);
            }

            ran += commands.Count;
        }

        var stopped = await shell.StopAllAsync(CommandTimeout);
        stopped.ShouldBeEmpty(string.Join("\n", stopped));
        output.WriteLine($"{page}: {ran} commands ran as written");
    }

    [Fact]
    public void Blocks_left_out_are_few_and_say_why()
    {
        var skipped = AllPages().SelectMany(p => DocBlocks.Read(TestPaths.RepoRoot, p)).Where(b => b.IsCommands && b.SkipReason is not null).ToList();
        skipped.ShouldAllBe(b => b.SkipReason!.Length >= 20, "each left-out block says why it cannot run here");
        skipped.Count.ShouldBeLessThanOrEqualTo(MostSkippedBlocks, string.Join("\n", skipped.Select(b => $"{b.Where}: {b.SkipReason}")));
    }

    private static IEnumerable<string> AllPages() =>
        new[] { "README.md" }.Concat(Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "docs"), "*.md", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(TestPaths.RepoRoot, f)).Order(StringComparer.Ordinal));

    private async Task<string?> RunBlockAsync(DocShell shell, List<DocCommand> commands, List<string> printed)
    {
        foreach (var command in commands)
        {
            if (DocShell.IsRunOrDemo(command.Text) && await shell.StopRunsAsync(CommandTimeout) is { Count: > 0 } stopped)
            {
                return $"{command.Where}: before '{command.Text}': {string.Join("\n", stopped)}";
            }

            if (DocShell.IsLongRunning(command.Text))
            {
                await shell.StartAsync(command.Text, CommandTimeout);
                output.WriteLine($"{command.Where}: started {command.Text}");
                continue;
            }

            var started = System.Diagnostics.Stopwatch.StartNew();
            var (code, stdout, stderr) = await shell.RunAsync(command.Text, CommandTimeout);
            output.WriteLine($"{command.Where}: exit {code} after {started.Elapsed.TotalSeconds:0.0} s: {command.Text}");
            if (code != 0)
            {
                return $"{command.Where}: exit {code}: {command.Text}\nstdout:\n{DocShell.Tail(stdout)}\nstderr:\n{DocShell.Tail(stderr)}";
            }

            printed.Add(stdout.TrimEnd('\n'));
            var lines = stdout.Split('\n');
            var missing = command.ShownOutput.Where(l => l.Trim().Length > 0 && !DocBlocks.Shows(l, lines)).ToList();
            if (missing.Count > 0)
            {
                return $"{command.Where}: {command.Text}\ndid not print what the page shows:\n{string.Join("\n", missing)}\nprinted:\n{DocShell.Tail(stdout)}\nstderr:\n{DocShell.Tail(stderr)}";
            }
        }

        return null;
    }

    private static string? Compare(DocBlock shown, List<string> printed)
    {
        if (shown.Language == "json")
        {
            var last = printed.Count > 0 ? printed[^1] : "";
            try
            {
                using var actual = JsonDocument.Parse(last);
                using var expected = JsonDocument.Parse(string.Join("\n", shown.Lines));
                return JsonMatches(expected.RootElement, actual.RootElement) ? null : $"{shown.Where}: printed\n{last}\nthe page shows\n{string.Join("\n", shown.Lines)}";
            }
            catch (JsonException e)
            {
                return $"{shown.Where}: printed no JSON ({e.Message}):\n{last}";
            }
        }

        var lines = string.Join("\n", printed).Split('\n');
        var missing = shown.Lines.Where(l => l.Trim().Length > 0 && !DocBlocks.Shows(l, lines)).ToList();
        return missing.Count == 0 ? null : $"{shown.Where}: not printed:\n{string.Join("\n", missing)}\nprinted:\n{DocShell.Tail(string.Join("\n", printed))}";
    }

    /// <summary>Equal JSON, where the page's string <c>"..."</c> stands for any value.</summary>
    private static bool JsonMatches(JsonElement expected, JsonElement actual)
    {
        if (expected.ValueKind == JsonValueKind.String && expected.GetString() == "...") { return true; }
        if (expected.ValueKind != actual.ValueKind) { return false; }
        return expected.ValueKind switch
        {
            JsonValueKind.Object => expected.EnumerateObject().Count() == actual.EnumerateObject().Count()
                && expected.EnumerateObject().All(p => actual.TryGetProperty(p.Name, out var a) && JsonMatches(p.Value, a)),
            JsonValueKind.Array => expected.GetArrayLength() == actual.GetArrayLength()
                && expected.EnumerateArray().Zip(actual.EnumerateArray()).All(x => JsonMatches(x.First, x.Second)),
            _ => JsonElement.DeepEquals(expected, actual),
        };
    }

    private static bool ReadsOnly(string command) =>
        command.StartsWith("./sluice query ", StringComparison.Ordinal) || command.StartsWith("redis-cli ", StringComparison.Ordinal)
        || (command.StartsWith("curl -s \"", StringComparison.Ordinal) && !command.Contains("-X POST", StringComparison.Ordinal));
}
