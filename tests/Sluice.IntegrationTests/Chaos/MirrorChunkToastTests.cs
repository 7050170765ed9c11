using Npgsql;
using Sluice.IntegrationTests.Support;
using Xunit.Abstractions;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// A TOASTed value in an incremental snapshot's chunk window (docs/CDC.md, "Snapshots on demand"): the mirrors never had
/// the rows (no initial snapshot), so <c>sluice cdc snapshot</c> is what brings them, in chunks of four, while another
/// connection keeps updating a small column of many rows at once, leaving each row's large <c>body</c> alone (REPLICA
/// IDENTITY DEFAULT: the stream marks it unchanged and never carries it). An update between a chunk's watermarks made
/// the chunk drop that row, and the mirrors ended with NULL for its body; the chunk must give the body it read.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class MirrorChunkToastTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(240);

    [Fact]
    public async Task Rows_updated_in_their_chunk_window_keep_their_toasted_values_in_the_postgres_and_clickhouse_mirrors()
    {
        await using var workload = new MirrorChaosWorkload(1);
        await workload.CreateAsync();
        // Only rows the snapshot will bring, every one with a body stored out of line.
        await workload.ExecuteAsync(
            "DELETE FROM items; DELETE FROM accounts; DELETE FROM pairs; " +
            "INSERT INTO items SELECT g, 'big ' || g, 0, g * 1.25, (SELECT string_agg(md5(random()::text || s || g), '') FROM generate_series(1, 150) s), " +
            "date_trunc('milliseconds', now()) FROM generate_series(100, 299) g");
        using var temp = new TempFolder("sluice-chunk-toast");
        var targets = MirrorTargets.All.Where(t => t.Name is "postgres" or "clickhouse").ToList();
        var (data, env) = await workload.WriteRecipeAsync(temp, "chunk-toast", targets);
        var recipe = Path.Combine(temp.Path, "chunk-toast", "recipe.yaml");
        var yaml = await File.ReadAllTextAsync(recipe);
        yaml.ShouldContain("      heartbeat: 1s\n");
        await File.WriteAllTextAsync(recipe, yaml.Replace("      heartbeat: 1s\n", "      heartbeat: 1s\n      snapshot: false\n", StringComparison.Ordinal));

        using var sluice = SluiceProcess.Start(data, env, "run", "chunk-toast");
        // Creating the slot waits for every transaction open on the server: generous on a busy shared one.
        await sluice.WaitForOutputOrExitAsync("Streaming ", Patience);
        sluice.HasExited.ShouldBeFalse(sluice.Stderr);

        using var updating = new CancellationTokenSource();
        var updater = UpdateAsync(workload, updating.Token);
        using (var snapshot = SluiceProcess.StartIn(temp.Path, data, env, "cdc", "snapshot", "chunk-toast/cdc", "--table", "items", "--chunk-rows", "4"))
        {
            (await snapshot.WaitAsync(Patience)).ShouldBe(0, $"{snapshot.Stdout}\n{snapshot.Stderr}\n{sluice.Stderr}");
            output.WriteLine(snapshot.Stdout.Trim());
            snapshot.Stdout.ShouldContain("snapshot 1 of public.items done: 200 rows read");
            // Rows updated while their chunk was read: the case this test is about.
            snapshot.Stdout.ShouldNotContain(", 0 left to newer streamed changes", Case.Sensitive, "no update met its row's chunk window: the test proved nothing");
        }

        await updating.CancelAsync();
        output.WriteLine($"{await updater} updates of 20 rows each while the snapshot ran");

        var deadline = DateTime.UtcNow + Patience;
        List<string> differences;
        while ((differences = await MirrorChaosTests.DifferencesAsync(workload, data)).Count > 0 && DateTime.UtcNow < deadline)
        {
            sluice.HasExited.ShouldBeFalse(sluice.Stderr);
            await Task.Delay(500);
        }

        differences.ShouldBeEmpty($"{differences.Count} differences\n{string.Join("\n", differences.Take(10))}\nsluice:\n{sluice.Stderr[Math.Max(0, sluice.Stderr.Length - 3000)..]}");
        (await sluice.StopAsync()).ShouldBe(0, sluice.Stderr);
    }

    /// <summary>Updates a tenth of the rows per statement (qty, name, updated; never body) until cancelled.</summary>
    private static async Task<int> UpdateAsync(MirrorChaosWorkload workload, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(workload.Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync(CancellationToken.None);
        var updates = 0;
        while (!ct.IsCancellationRequested)
        {
            await using var cmd = new NpgsqlCommand(
                $"UPDATE items SET qty = qty + 1, name = name || '+', updated = date_trunc('milliseconds', clock_timestamp()) WHERE id % 10 = {updates % 10}", connection);
            await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            updates++;
            try
            {
                await Task.Delay(10, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return updates;
    }
}
