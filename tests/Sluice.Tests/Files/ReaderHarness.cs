using System.Text;
using Sluice.Connectors.Files;
using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Tests.Files;

/// <summary>Runs a record reader over in-memory bytes and collects what it produced.</summary>
internal static class ReaderHarness
{
    public static readonly FileType VehicleEvents = Type("""
        name: vehicle_events
        pattern: "vehicles_events_*.json"
        root_key: vehicles_events
        table: raw_data.vehicle_events
        event_time: event_time
        fields:
          vehicle_id: string
          event_time: timestamp
          event_source: string
          event_type: string
        """);

    public static FileType Type(string yaml)
    {
        var errors = new ConfigErrors();
        var type = FileTypeParser.Parse(ConfigMap.Parse(yaml, "test.yaml", errors)!);
        errors.ThrowIfAny();
        return type!;
    }

    public static (IngestRun Run, List<ColumnBatch> Batches) Read(FileType type, string text, int batchRows = 65_536) =>
        Read(type, Encoding.UTF8.GetBytes(text), batchRows);

    public static (IngestRun Run, List<ColumnBatch> Batches) Read(FileType type, byte[] bytes, int batchRows = 65_536)
    {
        var run = new IngestRun(type, "test-file", batchRows);
        var batches = new List<ColumnBatch>();
        using var stream = new MemoryStream(bytes);
        RecordFileReaders.For(type).ReadAsync(stream, run, (b, _) =>
        {
            batches.Add(b);
            return ValueTask.CompletedTask;
        }, CancellationToken.None).GetAwaiter().GetResult();
        return (run, batches);
    }

    public static List<string?> Column(List<ColumnBatch> batches, int index) =>
        batches.SelectMany(b => Enumerable.Range(0, b.Count).Select(r => b.Value(index, r)?.ToString())).ToList();
}
