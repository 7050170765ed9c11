using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.Management;

/// <summary>A recipe without HTTP ingest (vehicle-files) still serves the management endpoint, and status and tap read it from beside.</summary>
public class VehicleFilesManagementTests
{
    private const string Ingest = "recipe=\"vehicle-files\",pipeline=\"ingest\"";

    [Fact]
    public async Task Run_serves_health_readiness_metrics_status_and_tap_and_withdraws_at_a_clean_stop()
    {
        using var data = new TempFolder();
        using var run = SluiceProcess.Start(data.Path, "run", "vehicle-files");
        var file = await WaitForFileAsync(data.Path, "vehicle-files", run, TimeSpan.FromSeconds(120));
        file.Pid.ShouldBe(run.Pid);
        // The management file is written as serving starts; the log line may reach stderr a moment later (the console
        // logger writes from its own queue): a loaded machine once read stderr empty here.
        await run.WaitForOutputAsync($"Serving HTTP on {file.Url}", TimeSpan.FromSeconds(60));

        (await GetAsync(file.Url + "/healthz")).Status.ShouldBe(200);
        var ready = await GetAsync(file.Url + "/readyz");
        ready.Status.ShouldBe(200, ready.Body);
        Json(ready.Body).GetProperty("pipelines")[0].GetProperty("state").GetString().ShouldBe("running");
        (await GetAsync(file.Url + "/api/status")).Status.ShouldBe(401, "status shows data: the management key or an admin token");

        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        VehicleFiles.Write(incoming, "vehicles_events_good.json", VehicleFiles.Events(("v1", "2024-05-01T10:00:00Z", "start"), ("v2", "2024-05-01T11:00:00Z", "stop")));
        VehicleFiles.Write(incoming, "vehicles_events_bad.json", "not json at all");
        await WaitForMetricsAsync(file.Url, TimeSpan.FromSeconds(60),
            $"sluice_pipeline_records_in_total{{{Ingest}}} 2",
            $"sluice_pipeline_batches_in_total{{{Ingest}}} 2",
            $"sluice_sink_records_out_total{{{Ingest},sink=\"lake\"}} 2",
            $"sluice_pipeline_backlog{{{Ingest},unit=\"files\"}} 0",
            $"sluice_pipeline_state{{{Ingest},state=\"running\"}} 1");
        var metrics = (await GetAsync(file.Url + "/metrics")).Body;
        metrics.ShouldContain("sluice_dead_letters_pending{recipe=\"vehicle-files\",source=\"files:vehicle-files\",reason=");
        metrics.ShouldContain("sluice_job_next_run_timestamp_seconds{recipe=\"vehicle-files\",job=\"daily-summary\"}");

        var status = await SluiceProcess.RunAsync(data.Path, "status", "--format", "json");
        status.Code.ShouldBe(0, status.Err);
        var json = Json(status.Out);
        var pipeline = json.GetProperty("pipelines")[0];
        pipeline.GetProperty("recordsIn").GetInt64().ShouldBe(2);
        pipeline.GetProperty("sinks")[0].GetProperty("recordsOut").GetInt64().ShouldBe(2);
        pipeline.GetProperty("backlog").GetProperty("unit").GetString().ShouldBe("files");
        pipeline.GetProperty("lastReadAt").GetString()!.ShouldEndWith("Z");
        json.GetProperty("deadLetters").EnumerateArray().Sum(d => d.GetProperty("count").GetInt64()).ShouldBe(1);
        json.GetProperty("processes")[0].GetProperty("pid").GetInt32().ShouldBe(run.Pid);
        json.GetProperty("jobs")[0].GetProperty("job").GetString().ShouldBe("daily-summary");

        var table = await SluiceProcess.RunAsync(data.Path, "status");
        table.Code.ShouldBe(0, table.Err);
        table.Out.ShouldContain("vehicle-files/daily-summary");

        // The tap listens from when it connects: keep dropping new files until it has shown four lines. A files
        // pipeline shows each file's rows as they are read (with the file's name), then the file's outcome.
        using (var tap = SluiceProcess.Start(data.Path, "tap", "vehicle-files/ingest", "--limit", "4"))
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            for (var i = 0; !tap.HasExited && DateTime.UtcNow < deadline; i++)
            {
                VehicleFiles.Write(incoming, $"vehicles_events_tap{i}.json", VehicleFiles.Events(($"t{i}", "2024-05-02T10:00:00Z", "start")));
                await Task.Delay(300);
            }

            (await tap.WaitAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, tap.Stderr);
            var lines = tap.Stdout.Trim().Split('\n').Select(Json).ToList();
            lines.Count.ShouldBe(4, tap.Stdout);
            var rows = lines.Where(l => l.TryGetProperty("table", out _)).ToList();
            rows.ShouldNotBeEmpty(tap.Stdout);
            foreach (var row in rows)
            {
                row.GetProperty("table").GetString().ShouldBe("raw_data.vehicle_events");
                var dropped = row.GetProperty("file").GetString()!;
                dropped.ShouldStartWith("vehicles_events_tap");
                var record = row.GetProperty("record");
                record.GetProperty("vehicle_id").GetString().ShouldBe("t" + dropped["vehicles_events_tap".Length..^".json".Length], "the row of its own file");
                record.GetProperty("event_type").GetString().ShouldBe("start");
                record.GetProperty("event_source").GetString().ShouldBe("sensor");
            }

            // Files are committed in groups, so four lines may all be rows; the outcomes among them say landed.
            var outcomes = lines.Where(l => !l.TryGetProperty("table", out _)).ToList();
            outcomes.ShouldAllBe(l => l.GetProperty("record").GetProperty("status").GetString() == "landed");
        }

        (await run.StopAsync()).ShouldBe(0, run.Stderr);
        ManagementFile.All(new DataDirectory(data.Path)).ShouldBeEmpty("a clean stop removes the management file");
        var after = await SluiceProcess.RunAsync(data.Path, "status");
        after.Code.ShouldBe(1);
        after.Err.ShouldContain("not running");
    }

    [Fact]
    public async Task A_port_in_use_is_a_clear_error_and_exit_1()
    {
        using var data = new TempFolder();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var run = await SluiceProcess.RunAsync(data.Path, "run", "vehicle-files", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        run.Code.ShouldBe(1, run.Err);
        run.Err.ShouldContain($"cannot listen on 127.0.0.1:{port}");
        run.Err.ShouldContain("--port");
        run.Err.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task A_management_file_left_by_a_dead_process_means_not_running()
    {
        using var data = new TempFolder();
        var pid = DeadPid();
        PrivateFolder(data.Path);
        new ManagementFile(pid, "http://127.0.0.1:9", "k", "vehicle-files", DateTime.UtcNow).Write(new DataDirectory(data.Path));
        foreach (var command in new[] { new[] { "status" }, ["tap", "vehicle-files/ingest"] })
        {
            var result = await SluiceProcess.RunAsync(data.Path, command);
            result.Code.ShouldBe(1, result.Err);
            result.Err.ShouldContain("not running");
            result.Err.ShouldContain($"pid {pid}");
        }
    }

    private static void PrivateFolder(string path) => Core.IO.PrivateFiles.CreateFolder(path);
}
