using Sluice.Connectors.Files;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Support.VehicleFiles;

namespace Sluice.IntegrationTests.Files;

public sealed class DeadLetterReplayTests
{
    private const string T = "2025-11-08T10:30:00Z";

    private static FileType Quarantining(bool eventTypeRequired) => ParseType($"""
        name: vehicle_events
        pattern: "vehicles_events_*.json"
        root_key: vehicles_events
        table: raw_data.vehicle_events
        event_time: event_time
        on_invalid: quarantine_rows
        fields:
          vehicle_id: string
          event_time: timestamp
          event_source: string
          event_type: {"{"} type: string, required: {(eventTypeRequired ? "true" : "false")} {"}"}
        """);

    private static FileType ParseType(string yaml)
    {
        var errors = new ConfigErrors();
        var type = FileTypeParser.Parse(ConfigMap.Parse(yaml, "t.yaml", errors)!);
        errors.ThrowIfAny();
        return type!;
    }

    [Fact]
    public async Task Quarantined_records_go_to_the_dead_letter_store_and_replay_once_the_type_accepts_them()
    {
        await using var f = new DropFixture();
        var catalog = new FileTypeCatalog(f.Engine.Services.Metadata, f.Engine.Services.Time);
        catalog.Add("vehicle-files", Quarantining(eventTypeRequired: true));
        var content = Events(("V1", T, "braking"), ("V2", T, "idle"), ("V3", T, "speeding"))
            .Replace(", \"event_type\": \"idle\"", "", StringComparison.Ordinal);
        f.Drop_("vehicles_events_1.json", content);

        await f.RunOnceAsync();

        f.Events.ShouldBe(2, "good rows land under quarantine_rows");
        var letter = f.Engine.Services.DeadLetters.List("files:vehicle-files/vehicle_events").Single();
        letter.Position.ShouldBe("vehicles_events_1.json: line 4, record 2, field 'event_type'");
        letter.Reason.ShouldBe("missing required field");
        letter.Payload.ShouldBe("""{"vehicle_id": "V2", "event_time": "2025-11-08T10:30:00Z", "event_source": "sensor"}""");

        (await f.Source.ReplayAsync(letter, CancellationToken.None)).ShouldBe("field 'event_type': missing required field", "still invalid under the same type");
        f.Events.ShouldBe(2);

        catalog.Add("vehicle-files", Quarantining(eventTypeRequired: false));
        (await f.Source.ReplayAsync(letter, CancellationToken.None)).ShouldBeNull();
        f.Events.ShouldBe(3);
        f.Engine.Count("SELECT count(*) FROM raw_data.vehicle_events WHERE vehicle_id = 'V2' AND event_type IS NULL").ShouldBe(1);
        f.Engine.Services.DeadLetters.Get(letter.Id)!.Status.ShouldBe(DeadLetterStore.Replayed);
    }

    [Fact]
    public async Task A_failed_file_replays_into_incoming_and_lands_once_a_file_type_matches_it()
    {
        await using var f = new DropFixture();
        f.Drop_("trucks_1.json", Events(("T1", T, "braking")).Replace("vehicles_events", "trucks", StringComparison.Ordinal));
        await f.RunOnceAsync();
        var letter = f.Engine.Services.DeadLetters.List("files:vehicle-files").Single();

        new FileTypeCatalog(f.Engine.Services.Metadata, f.Engine.Services.Time).Add("vehicle-files",
            ParseType("""
                name: trucks
                pattern: "trucks_*.json"
                root_key: trucks
                table: raw_data.truck_events
                event_time: event_time
                fields: { vehicle_id: string, event_time: timestamp, event_source: string, event_type: string }
                """));
        (await f.Source.ReplayAsync(letter, CancellationToken.None)).ShouldBeNull();
        File.Exists(Path.Combine(f.Drop.Failed, "trucks_1.json")).ShouldBeFalse();
        File.Exists(Path.Combine(f.Drop.Failed, "trucks_1.json.error.json")).ShouldBeFalse();
        await f.RunOnceAsync();

        f.Engine.Count("SELECT count(*) FROM raw_data.truck_events").ShouldBe(1);
        File.Exists(Path.Combine(f.Drop.Processed, "trucks_1.json")).ShouldBeTrue();
    }
}
