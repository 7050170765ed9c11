using System.Globalization;
using System.Text;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Files;

public sealed class LargeFileTests
{
    /// <summary>The whole file is never in memory: it is read through one buffer and written in bounded batches.</summary>
    [Fact]
    public async Task A_2_GB_file_is_streamed_with_bounded_memory()
    {
        using var data = new TempFolder("sluice-large");
        var incoming = Path.Combine(data.Path, "vehicle-files", "incoming");
        Directory.CreateDirectory(incoming);
        var temp = Path.Combine(incoming, ".vehicles_events_big.json.tmp");
        var records = WriteBigFile(temp, 2L * 1024 * 1024 * 1024);
        File.Move(temp, Path.Combine(incoming, "vehicles_events_big.json"));

        using var run = SluiceProcess.Start(data.Path, "run", "vehicle-files", "--once");
        var peak = 0.0;
        while (!run.HasExited)
        {
            peak = Math.Max(peak, run.PeakRssMiB());
            await Task.Delay(100);
        }

        (await run.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBe(0, run.Stderr);
        peak.ShouldBeGreaterThan(0);
        peak.ShouldBeLessThan(800, $"peak RSS {peak:0} MiB while ingesting a 2 GiB file");
        var (_, stdout, _) = await SluiceProcess.RunAsync(data.Path, "query", "SELECT count(*) AS n, count(DISTINCT date) AS days FROM raw_data.vehicle_events", "--format", "csv");
        stdout.ShouldBe($"n,days\n{records},3\n");
    }

    private static long WriteBigFile(string path, long targetBytes)
    {
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        var head = Encoding.UTF8.GetBytes("{\"vehicles_events\": [\n");
        stream.Write(head);
        var block = new StringBuilder();
        const int perBlock = 10_000;
        for (var i = 0; i < perBlock; i++)
        {
            var day = 6 + (i % 3);
            block.Append(CultureInfo.InvariantCulture, $"{{\"vehicle_id\": \"V{i % 997}\", \"event_time\": \"2025-11-0{day}T{i % 24:D2}:{i % 60:D2}:{i % 59:D2}Z\", \"event_source\": \"sensor\", \"event_type\": \"type_{i % 13}\"}},\n");
        }

        var bytes = Encoding.UTF8.GetBytes(block.ToString());
        long records = 0;
        while (stream.Position + bytes.Length < targetBytes)
        {
            stream.Write(bytes);
            records += perBlock;
        }

        var last = Encoding.UTF8.GetBytes("{\"vehicle_id\": \"V0\", \"event_time\": \"2025-11-06T00:00:00Z\", \"event_source\": \"sensor\", \"event_type\": \"last\"}\n]}\n");
        stream.Write(last);
        return records + 1;
    }
}
