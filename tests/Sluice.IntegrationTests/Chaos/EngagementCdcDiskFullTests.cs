using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// engagement-cdc with its one local file, <c>meta.db</c>, on a full disk (the data folder is a small tmpfs filled but
/// for nothing): the sinks' checkpoints cannot be recorded, so nothing is acknowledged to the slot; the run says what is
/// full without a stack trace and waits; once space is freed and the process restarted, every sink holds each source
/// row exactly once.
/// </summary>
[Trait("Category", "Chaos")]
public sealed class EngagementCdcDiskFullTests
{
    private const string SinkWaiting = "the batch is written again every";

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_full_metadata_disk_stops_acknowledging_says_so_and_a_restart_after_freeing_space_leaves_every_sink_exact()
    {
        await using var scenario = await CdcScenario.CreateAsync();
        using var disk = Tmpfs.Mount(scenario.DataRoot, megabytes: 8);
        await scenario.InsertAsync(200, rowsPerStatement: 20, seed: 130);
        long slotBefore;
        string note;
        using (var first = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc"))
        {
            await scenario.WaitForAllSinksAsync(Patience);
            slotBefore = await ConfirmedAsync(scenario);
            disk.Fill(leftKiB: 0);
            var atFill = await scenario.ScalarAsync<long>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");

            // Small transactions, each a batch whose checkpoints need new pages of meta.db's WAL.
            // The sinks' own message (9602): the slot's idle-position warning (10000) also says "no space left on device".
            for (var i = 0; i < 40 && !first.Stderr.Contains(SinkWaiting, StringComparison.Ordinal); i++)
            {
                await scenario.InsertAsync(10, rowsPerStatement: 10, seed: 500 + i);
                await Task.Delay(100);
            }

            await first.WaitForOutputOrExitAsync(SinkWaiting, Patience);
            first.HasExited.ShouldBeFalse($"a full disk is waited out, not a reason to stop.\n{first.Stderr}");
            first.Stderr.ShouldContain(Path.Combine(scenario.DataRoot, "meta.db"), Case.Sensitive, "the error names the file that cannot grow");
            first.Stderr.ShouldNotContain("   at ", Case.Sensitive, "a full disk is a condition of the machine: no stack trace");
            var whileFull = await scenario.ClickHouseCountAsync();
            (await ConfirmedAsync(scenario)).ShouldBeLessThanOrEqualTo(atFill, "no change after the fill is acknowledged to the slot while its checkpoints cannot be recorded");

            // Freed while running: the sinks write their batches again and record them, without a restart.
            disk.Free();
            await scenario.WaitForAllSinksAsync(Patience);
            await first.WaitForOutputAsync("space again, writing resumed", Patience);
            (await first.StopAsync()).ShouldBe(0, first.Stderr);
            first.Stderr.ShouldNotContain("   at ", Case.Sensitive);
            note = $"ClickHouse held {whileFull} rows while the disk was full (written, not checkpointed); slot confirmed at {slotBefore} before the fill";
        }

        // Restarted: replays from the recorded checkpoints, lands nothing twice.
        await scenario.InsertAsync(100, seed: 131);
        using var second = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc");
        await scenario.WaitForAllSinksAsync(Patience);
        await CdcServerRestartTests.RecordAsync(scenario, nameof(A_full_metadata_disk_stops_acknowledging_says_so_and_a_restart_after_freeing_space_leaves_every_sink_exact),
            "disk full (the data folder, so meta.db, on an 8 MiB tmpfs), freed while running, then restarted", $"acknowledged = rows committed at the source; {note}");
        await scenario.AssertExactAsync();
        (await second.StopAsync()).ShouldBe(0, second.Stderr);
    }

    private static Task<long> ConfirmedAsync(CdcScenario scenario) =>
        scenario.ScalarAsync<long>($"SELECT pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint FROM pg_replication_slots WHERE slot_name = '{scenario.Slot}'");
}
