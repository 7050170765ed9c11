using System.Globalization;
using System.Text.Json;

namespace Sluice.Recipes.Generators;

/// <summary>Options of <c>sluice generate vehicle-files</c>.</summary>
public sealed record VehicleFilesGeneratorOptions
{
    /// <summary>Files per round (event and status files alternate).</summary>
    public int Files { get; init; } = 10;

    public int EventsPerFile { get; init; } = 100;

    /// <summary>Share of files that are broken on purpose (malformed JSON, wrong root key, wrong type, missing field, bad timestamp).</summary>
    public double BadRatio { get; init; }

    /// <summary>Share of events that are late: their event time lies 1 to 4 days before the file's time.</summary>
    public double LateRatio { get; init; } = 0.05;

    public int Vehicles { get; init; } = 50;

    /// <summary>The generated clock's start (events around it, files named after it), so that examples name dates the data covers; default: now.</summary>
    public DateTimeOffset? Now { get; init; }

    public int? Seed { get; init; }
}

/// <summary>
/// Writes vehicle event and status files in the seed's format into a drop folder. Each file is written under a
/// hidden temporary name and renamed when complete, as well-behaved producers do.
/// </summary>
public sealed class VehicleFilesGenerator(string incoming, VehicleFilesGeneratorOptions options, TimeProvider time)
{
    private static readonly string[] EventSources = ["sensor", "api", "mobile", "telematics"];
    private static readonly string[] EventTypes = ["acceleration", "braking", "ignition_on", "ignition_off", "door_open", "door_close", "speeding", "idle"];
    private static readonly string[] StatusSources = ["api", "sensor", "dashboard"];
    private static readonly string[] Statuses = ["active", "inactive", "maintenance", "charging", "parked"];
    private static readonly string[] BadKinds = ["malformed_json", "wrong_root_key", "wrong_type", "missing_field", "bad_timestamp"];

#pragma warning disable CA5394 // Sample data, not security: a seeded generator makes runs repeatable.
    private readonly Random _random = options.Seed is { } s ? new Random(s) : new Random();
    private long _sequence;

    /// <summary>How far the generated clock is from the real one; it runs at the real pace from <see cref="VehicleFilesGeneratorOptions.Now"/>.</summary>
    private readonly TimeSpan _shift = options.Now is { } start ? start - time.GetUtcNow() : TimeSpan.Zero;

    /// <summary>Writes one round of files; returns their paths.</summary>
    public IReadOnlyList<string> WriteRound()
    {
        Directory.CreateDirectory(incoming);
        var written = new List<string>();
        for (var i = 0; i < options.Files; i++)
        {
            var isEvents = (_sequence % 2) == 0;
            var bad = _random.NextDouble() < options.BadRatio ? BadKinds[_random.Next(BadKinds.Length)] : null;
            written.Add(WriteFile(isEvents, bad));
        }

        return written;
    }

    public async Task RunContinuousAsync(TimeSpan interval, Action<IReadOnlyList<string>>? onRound, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            onRound?.Invoke(WriteRound());
            try
            {
                await Task.Delay(interval, time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private string WriteFile(bool isEvents, string? bad)
    {
        var now = (time.GetUtcNow() + _shift).UtcDateTime;
        var seq = Interlocked.Increment(ref _sequence);
        var name = string.Create(CultureInfo.InvariantCulture, $"vehicles_{(isEvents ? "events" : "status")}_{now:yyyyMMddHHmmss}_{seq:D6}.json");
        var temp = Path.Combine(incoming, "." + name + ".tmp");
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
            json.WriteStartObject();
            json.WriteStartArray(bad == "wrong_root_key" ? "vehicle_records" : isEvents ? "vehicles_events" : "vehicles_status");
            var badRecord = bad is "wrong_type" or "missing_field" or "bad_timestamp" ? _random.Next(options.EventsPerFile) : -1;
            for (var e = 0; e < options.EventsPerFile; e++)
            {
                WriteRecord(json, isEvents, now, e == badRecord ? bad : null);
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            if (bad == "malformed_json")
            {
                stream.SetLength(Math.Max(1, stream.Length * 2 / 3));
            }
        }

        var final = Path.Combine(incoming, name);
        File.Move(temp, final);
        return final;
    }

    private void WriteRecord(Utf8JsonWriter json, bool isEvents, DateTime now, string? bad)
    {
        var at = now.AddSeconds(-_random.Next(3600));
        if (_random.NextDouble() < options.LateRatio)
        {
            at = at.AddDays(-_random.Next(1, 5)).AddSeconds(-_random.Next(86_400));
        }

        json.WriteStartObject();
        if (bad == "wrong_type") { json.WriteNumber("vehicle_id", _random.Next(100, 100 + options.Vehicles)); }
        else { json.WriteString("vehicle_id", string.Create(CultureInfo.InvariantCulture, $"V{_random.Next(100, 100 + options.Vehicles)}")); }

        var timeField = isEvents ? "event_time" : "report_time";
        if (bad == "bad_timestamp") { json.WriteString(timeField, "yesterday at noon"); }
        else { json.WriteString(timeField, at.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)); }

        json.WriteString(isEvents ? "event_source" : "status_source", isEvents ? EventSources[_random.Next(EventSources.Length)] : StatusSources[_random.Next(StatusSources.Length)]);
        if (bad != "missing_field")
        {
            json.WriteString(isEvents ? "event_type" : "status", isEvents ? EventTypes[_random.Next(EventTypes.Length)] : Statuses[_random.Next(Statuses.Length)]);
        }

        json.WriteEndObject();
    }
#pragma warning restore CA5394
}
