using Npgsql;
using Sluice.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// The mirror chaos test's lost deletes, made deterministic: one mirror sink (postgres, held up by the lock it takes
/// before it creates its table) commits nothing of the initial snapshot while the others (lake, clickhouse) commit all
/// of it; Sluice is SIGKILLed. While it is down the source deletes a row, truncates a table and changes a key. The next
/// start takes the snapshot again on a new slot (some sink never got the first one), so those changes, made on the
/// slot given up, never reach any sink: the sinks that held the first snapshot must still end up equal to the source.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class MirrorSnapshotAgainTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Mirrors_that_held_the_first_snapshot_equal_the_source_after_the_snapshot_is_taken_again()
    {
        await using var workload = new MirrorChaosWorkload(seed: 1);
        await workload.CreateAsync();
        using var temp = new TempFolder("sluice-mirror-again");
        var (data, env) = await workload.WriteRecipeAsync(temp, "mirror-again");

        // Not pooled: closing it must end the session, and with it the locks.
        var unpooled = new NpgsqlConnectionStringBuilder(workload.Pg.ConnectionString("sluice-test-blocker")) { Pooling = false }.ConnectionString;
        await using (var blocker = new NpgsqlConnection(unpooled))
        {
            await blocker.OpenAsync();
            // The lock the postgres sink takes before creating each mirror table (PostgresSink.EnsureTableAsync).
            var locks = string.Join(", ", MirrorChaosWorkload.Tables.Select(t => $"pg_advisory_lock(hashtext('\"mirror\".\"{t.Table}\"'))"));
            await using (var hold = new NpgsqlCommand($"SELECT {locks}", blocker)) { await hold.ExecuteNonQueryAsync(); }

            using var first = SluiceProcess.Start(data, env, "run", "mirror-again");
            await first.WaitForOutputOrExitAsync("Streaming ", TimeSpan.FromSeconds(60));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            List<string> behind;
            while ((behind = (await MirrorChaosTests.DifferencesAsync(workload, data)).Where(d => !d.StartsWith("postgres.", StringComparison.Ordinal)).ToList()).Count > 0)
            {
                first.HasExited.ShouldBeFalse(first.Stderr);
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"lake and clickhouse never held the snapshot:\n{string.Join("\n", behind.Take(10))}\n{first.Stderr}");
                await Task.Delay(250);
            }

            (await MirrorTargets.All.Single(t => t.Name == "postgres").ReadAsync(data, workload.Id, "accounts", MirrorChaosWorkload.Tables[1].Columns)).ShouldBeEmpty("the postgres mirror was to commit nothing");
            first.Kill();
        }

        // Sluice is down: these changes are made on the slot the next start gives up.
        await workload.ExecuteAsync("DELETE FROM accounts WHERE id = 7; TRUNCATE pairs; UPDATE items SET id = 9001 WHERE id = 1");

        using var again = SluiceProcess.Start(data, env, "run", "mirror-again");
        await again.WaitForOutputOrExitAsync("Streaming ", TimeSpan.FromSeconds(60));
        again.Stderr.ShouldContain("Re-taking the initial snapshot", customMessage: "the scenario needs the snapshot taken again");
        var until = DateTime.UtcNow.AddSeconds(90);
        List<string> differences;
        while ((differences = await MirrorChaosTests.DifferencesAsync(workload, data)).Count > 0 && DateTime.UtcNow < until)
        {
            again.HasExited.ShouldBeFalse(again.Stderr);
            await Task.Delay(250);
        }

        output.WriteLine(string.Join("\n", differences.Take(20)));
        differences.ShouldBeEmpty($"{differences.Count} differences\n{string.Join("\n", differences.Take(20))}\nsluice:\n{again.Stderr[Math.Max(0, again.Stderr.Length - 3000)..]}");
        (await again.StopAsync()).ShouldBe(0, again.Stderr);
    }
}
