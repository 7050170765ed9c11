using Sluice.Recipes.Generators;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>
/// The riskiest point of the design: other commands must work on a data folder while <c>run</c> is writing to it.
/// </summary>
public sealed class RunningInstanceTests
{
    [Fact]
    public async Task Query_job_run_validate_and_filetypes_work_while_run_is_running_and_a_second_run_is_refused()
    {
        using var data = new TempFolder();
        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        var generator = new VehicleFilesGenerator(incoming, new VehicleFilesGeneratorOptions { Files = 4, EventsPerFile = 500, Seed = 3 }, TimeProvider.System);
        generator.WriteRound();
        using var run = SluiceProcess.Start(data.Path, "run", "vehicle-files");
        await run.WaitForOutputAsync("vehicle-files/daily-summary:", TimeSpan.FromSeconds(60));

        // Keep files arriving while the other commands read and write the same data folder.
        using var feeding = new CancellationTokenSource();
        var feeder = generator.RunContinuousAsync(TimeSpan.FromMilliseconds(300), null, feeding.Token);
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var (code, stdout, err) = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) AS n FROM raw_data.vehicle_events", "--format", "csv");
                code.ShouldBe(0, err);
                var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                lines[0].ShouldBe("n");
                long.Parse(lines[1], System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThanOrEqualTo(1000);
            }

            var job = await SluiceProcess.RunAsync(data.Path, "job", "run", "vehicle-files/daily-summary");
            job.Code.ShouldBe(0, job.Err);
            job.Out.ShouldContain("vehicle-files/daily-summary as of ");

            (await SluiceProcess.RunAsync(data.Path, "validate", "vehicle-files")).Code.ShouldBe(0);

            var second = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--once");
            second.Code.ShouldBe(1);
            second.Err.ShouldContain("another 'sluice run' or 'sluice demo' of 'vehicle-files' is already running");

            // A file type added from another process is picked up by the running instance without a restart.
            var typeFile = Path.Combine(data.Path, "trucks.yaml");
            File.WriteAllText(typeFile, "name: trucks\npattern: \"trucks_*.ndjson\"\nformat: ndjson\ntable: raw_data.trucks\nevent_time: at\nfields:\n  plate: string\n  at: timestamp\n");
            (await SluiceProcess.RunAsync(data.Path, "filetypes", "add", "vehicle-files", typeFile)).Code.ShouldBe(0);
            VehicleFiles.Write(incoming, "trucks_1.ndjson", "{\"plate\": \"AB-123\", \"at\": \"2025-11-08T10:00:00Z\"}\n{\"plate\": \"CD-456\", \"at\": \"2025-11-08T11:00:00Z\"}\n");
            await run.WaitForOutputAsync("trucks_1.ndjson: 2 rows landed in raw_data.trucks", TimeSpan.FromSeconds(90));
            var trucks = await SluiceProcess.RunAsync(data.Path, "query", "SELECT plate FROM raw_data.trucks ORDER BY plate", "--format", "csv");
            trucks.Out.ShouldBe("plate\nAB-123\nCD-456\n");
        }
        finally
        {
            await feeding.CancelAsync();
            await feeder;
        }

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
        run.Stderr.ShouldContain("vehicle-files: stopped cleanly");
        var history = await SluiceProcess.RunAsync(data.Path, "job", "history");
        history.Out.ShouldContain("after_load");
        history.Out.ShouldContain("manual");
    }
}
