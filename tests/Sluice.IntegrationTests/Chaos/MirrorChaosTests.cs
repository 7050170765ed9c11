using System.Globalization;
using Sluice.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// The issue's mirror test: random inserts, updates, deletes, key changes and truncates on three tables of a real
/// Postgres, streamed by <c>postgres_cdc</c> into every mirror sink of <see cref="MirrorTargets"/>, while Sluice is
/// SIGKILLed again and again (by the test at random moments, and at the commit points of the sink and the lake:
/// after the rename, after the write, after the checkpoint; a fold is a lake commit too). Then each mirror must equal
/// its source table exactly: every column, the rows of each side missing from the other (EXCEPT both ways) empty.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class MirrorChaosTests(ITestOutputHelper output)
{
    private const int Rounds = 6;

    private static readonly string[] CrashPoints = ["lake.renamed", "sink.written", "sink.checkpointed"];

    [Fact]
    public async Task Mirrors_equal_their_source_tables_after_random_changes_and_sigkills()
    {
        // SLUICE_CHAOS_SEED replays a failing run's seed (the changes and the kill points; the timing is the machine's).
        var seed = int.TryParse(Environment.GetEnvironmentVariable("SLUICE_CHAOS_SEED"), System.Globalization.NumberStyles.Integer, CultureInfo.InvariantCulture, out var given) ? given : Environment.TickCount;
        output.WriteLine($"seed {seed} (SLUICE_CHAOS_SEED={seed} replays it)");
        Console.Error.WriteLine($"MirrorChaosTests: seed {seed}");
        var random = new Random(seed);
        await using var workload = new MirrorChaosWorkload(seed);
        await workload.CreateAsync();
        using var temp = new TempFolder("sluice-mirror-chaos");
        var (data, env) = await workload.WriteRecipeAsync(temp, "mirror-chaos");

        using var stop = new CancellationTokenSource();
        var changing = Task.Run(() => workload.RunAsync(stop.Token));
        var kills = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            // Half the rounds die at a commit point, the others when the test pulls the plug.
            var point = round % 2 == 1 ? $"{CrashPoints[random.Next(CrashPoints.Length)]}:{random.Next(1, 4)}" : null;
            var runEnv = new Dictionary<string, string>(env, StringComparer.Ordinal) { ["SLUICE_CRASH_AT"] = point ?? "" };
            using var sluice = SluiceProcess.Start(data, runEnv, "run", "mirror-chaos");
            // The clock starts once it streams (a start waits for the slot its killed predecessor held).
            await sluice.WaitForOutputOrExitAsync("Streaming ", TimeSpan.FromSeconds(60));
            var deadline = DateTime.UtcNow.AddMilliseconds(point is null ? random.Next(300, 3000) : 8000);
            while (DateTime.UtcNow < deadline && !sluice.HasExited) { await Task.Delay(20); }
            if (changing.IsFaulted) { await changing; }
            if (sluice.HasExited)
            {
                sluice.Stderr.ShouldContain("SLUICE_CRASH_AT: killed at", customMessage: $"exited on its own:\n{sluice.Stderr}");
                kills.Add(point!);
            }
            else
            {
                sluice.Kill();
                kills.Add(point is null ? "test" : $"test ({point} not reached)");
            }
        }

        await stop.CancelAsync();
        await changing;
        output.WriteLine($"{workload.Transactions} transactions ({workload.Truncates} truncates); kills: {string.Join(", ", kills)}");

        // A last run with no fault catches up; then every mirror must equal its source.
        using (var sluice = SluiceProcess.Start(data, env, "run", "mirror-chaos"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(180);
            List<string> differences;
            while ((differences = await DifferencesAsync(workload, data)).Count > 0)
            {
                if (sluice.HasExited) { throw new InvalidOperationException($"sluice exited ({sluice.Stderr})"); }
                if (DateTime.UtcNow > deadline) { break; }
                await Task.Delay(500);
            }

            (await sluice.StopAsync()).ShouldBe(0, sluice.Stderr);
            ChaosFigures.Record(nameof(Mirrors_equal_their_source_tables_after_random_changes_and_sigkills), "mirror-chaos", $"{Rounds} SIGKILLs of sluice ({string.Join(", ", kills)})",
                workload.Transactions, workload.Transactions, workload.Transactions, 0, differences.Count, $"seed {seed}; {workload.Truncates} truncates; differing rows across {string.Join(", ", MirrorTargets.All.Select(t => t.Name))}: {differences.Count}");
            using var letters = new Sluice.Hosting.EngineServices(new Core.DataDirectory(data), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
            var refused = letters.DeadLetters.List(null, null, 20).Select(l => $"{l.Source} {l.Position}: {l.Reason}").ToList();
            differences.ShouldBeEmpty($"seed {seed}; {differences.Count} differences; dead letters: {string.Join("; ", refused)}\n{string.Join("\n", differences.Take(20))}\nsluice:\n{sluice.Stderr[Math.Max(0, sluice.Stderr.Length - 3000)..]}");
        }

        // The lake kept folding its changes under the kills: what it replaced waits out its grace as garbage.
        using var services = new Sluice.Hosting.EngineServices(new Core.DataDirectory(data), TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        output.WriteLine($"lake: {string.Join(", ", MirrorChaosWorkload.Tables.Select(t => $"{t.Table} {services.Lake.FileEntries($"mirror.{t.Table}").Count} files"))}, {services.Lake.Garbage().Count} replaced");
        services.Lake.Garbage().Count.ShouldBeGreaterThan(0);
    }

    /// <summary>For every target and table: the source's rows the mirror lacks and the mirror's rows the source lacks.</summary>
    internal static async Task<List<string>> DifferencesAsync(MirrorChaosWorkload workload, string data)
    {
        var differences = new List<string>();
        foreach (var (table, _, columns) in MirrorChaosWorkload.Tables)
        {
            var source = await workload.RowsAsync(table, columns);
            foreach (var target in workload.Targets)
            {
                var mirror = await target.ReadAsync(data, workload.Id, table, columns);
                differences.AddRange(Except(source, mirror).Select(r => $"{target}.{table} lacks {Clip(r)}"));
                differences.AddRange(Except(mirror, source).Select(r => $"{target}.{table} has extra {Clip(r)}"));
            }
        }

        return differences;
    }

    /// <summary>Rows of <paramref name="left"/> not in <paramref name="right"/>, counting duplicates (EXCEPT ALL).</summary>
    internal static List<string> Except(List<string> left, List<string> right)
    {
        var remaining = right.GroupBy(r => r, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var row in left)
        {
            if (remaining.TryGetValue(row, out var n) && n > 0) { remaining[row] = n - 1; }
            else { missing.Add(row); }
        }

        return missing;
    }

    internal static string Clip(string row) => row.Length <= 200 ? row : string.Create(CultureInfo.InvariantCulture, $"{row[..200]}... ({row.Length} chars)");
}
