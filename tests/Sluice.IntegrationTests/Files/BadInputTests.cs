using Sluice.Connectors.Files;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Support.VehicleFiles;

namespace Sluice.IntegrationTests.Files;

/// <summary>Each bad input of the issue: the file moves to failed/ with a precise error.json, a dead letter says why, and nothing of it lands.</summary>
public sealed class BadInputTests
{
    private const string T = "2025-11-08T10:30:00Z";

    [Fact]
    public async Task Malformed_json_fails_the_file_with_its_line()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_good.json", Events(("V1", T, "braking")));
        f.Drop_("vehicles_events_bad.json", "{\n  \"vehicles_events\": [\n    {\"vehicle_id\": \"V1\" \"event_time\": \"x\"}\n  ]\n}");

        await f.RunOnceAsync();

        var rejection = f.Rejection("vehicles_events_bad.json");
        rejection.Reason.ShouldStartWith("malformed JSON at line 3, byte ");
        rejection.Line.ShouldBe(3);
        rejection.FileType.ShouldBe("vehicle_events");
        File.Exists(Path.Combine(f.Drop.Failed, "vehicles_events_bad.json")).ShouldBeTrue();
        f.Events.ShouldBe(1, "the good file landed, nothing of the bad one");
        var letter = f.Engine.Services.DeadLetters.List("files:vehicle-files").Single();
        letter.Position.ShouldBe("failed/vehicles_events_bad.json: line 3, record 1");
        letter.Reason.ShouldBe(rejection.Reason);
    }

    [Fact]
    public async Task Wrong_root_key_fails_the_file()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(("V1", T, "braking")).Replace("vehicles_events", "vehicle_events", StringComparison.Ordinal));

        await f.RunOnceAsync();

        f.Rejection("vehicles_events_1.json").Reason.ShouldBe("wrong root key: expected 'vehicles_events', found keys 'vehicle_events'");
        f.Outcome("vehicles_events_1.json").Status.ShouldBe(FileStatus.Failed);
    }

    [Fact]
    public async Task Wrong_field_type_rejects_the_whole_file_and_names_record_line_and_field()
    {
        await using var f = new DropFixture();
        var content = Events(("V1", T, "braking"), ("V2", T, "idle")).Replace("\"V2\"", "42", StringComparison.Ordinal);
        f.Drop_("vehicles_events_1.json", content);

        await f.RunOnceAsync();

        var rejection = f.Rejection("vehicles_events_1.json");
        rejection.Errors.Single().ShouldBe(new FileRejection.Issue(4, 2, "vehicle_id", "wrong type: expected text, got number 42"));
        rejection.Reason.ShouldBe("1 invalid record (policy reject_file); first: vehicles_events_1.json: line 4, record 2, field 'vehicle_id': wrong type: expected text, got number 42");
        f.Engine.Services.Lake.Files("raw_data.vehicle_events").ShouldBeEmpty("reject_file: the valid first record must not land either");
    }

    [Fact]
    public async Task Missing_required_field_rejects_the_file()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(("V1", T, "braking")).Replace(", \"event_type\": \"braking\"", "", StringComparison.Ordinal));

        await f.RunOnceAsync();

        f.Rejection("vehicles_events_1.json").Errors.Single().ShouldBe(new FileRejection.Issue(3, 1, "event_type", "missing required field"));
    }

    [Fact]
    public async Task Unparsable_timestamp_rejects_the_file()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", Events(("V1", "08/11/2025 10:30", "braking")));

        await f.RunOnceAsync();

        f.Rejection("vehicles_events_1.json").Errors.Single().Error.ShouldStartWith("unparsable timestamp '08/11/2025 10:30'");
    }

    [Fact]
    public async Task Empty_array_is_processed_with_no_rows()
    {
        await using var f = new DropFixture();
        f.Drop_("vehicles_events_1.json", "{\"vehicles_events\": []}");

        await f.RunOnceAsync();

        f.Outcome("vehicles_events_1.json").ShouldSatisfyAllConditions(
            o => o.Status.ShouldBe(FileStatus.Landed),
            o => o.Rows.ShouldBe(0));
        File.Exists(Path.Combine(f.Drop.Processed, "vehicles_events_1.json")).ShouldBeTrue();
        f.Engine.Services.DeadLetters.Count().ShouldBe(0);
    }

    [Fact]
    public async Task Zero_byte_file_fails_as_empty()
    {
        await using var f = new DropFixture();
        File.WriteAllBytes(Path.Combine(f.Drop.Incoming, "vehicles_events_1.json"), []);

        await f.RunOnceAsync();

        f.Rejection("vehicles_events_1.json").Reason.ShouldBe("the file is empty (0 bytes)");
    }

    [Fact]
    public async Task Unknown_file_name_fails_with_the_known_patterns()
    {
        await using var f = new DropFixture();
        f.Drop_("trucks_2025.json", Events(("V1", T, "braking")));

        await f.RunOnceAsync();

        f.Rejection("trucks_2025.json").Reason.ShouldBe("no file type matches the name 'trucks_2025.json' (known patterns: vehicles_events_*.json, vehicles_status_*.json)");
        f.Rejection("trucks_2025.json").FileType.ShouldBeNull();
    }

    [Fact]
    public async Task The_same_content_in_two_groups_committed_at_once_lands_once()
    {
        // Equal-sized files, five to a group, two groups written at once: the pairs 01, 03, ... straddle two groups,
        // so both groups see the content as new until one of them commits.
        var contents = Enumerable.Range(0, 20).Select(i => Events(($"V{i:00}", T, "braking"), ($"W{i:00}", T, "idle"))).ToList();
        var size = System.Text.Encoding.UTF8.GetByteCount(contents[0]);
        await using var f = new DropFixture(groupMaxBytes: size * 9 / 2);
        for (var i = 0; i < contents.Count; i++)
        {
            f.Drop_($"vehicles_events_{i:00}_a.json", contents[i]);
            f.Drop_($"vehicles_events_{i:00}_b.json", contents[i]);
        }

        await f.RunOnceAsync();

        f.Events.ShouldBe(40);
        f.Engine.Count("SELECT count(DISTINCT vehicle_id) FROM raw_data.vehicle_events").ShouldBe(40);
        f.Outcomes.Count(o => o.Status == FileStatus.Landed).ShouldBe(20);
        f.Outcomes.Count(o => o.Status == FileStatus.Duplicate).ShouldBe(20);
        f.Outcomes.Where(o => o.Status == FileStatus.Landed).Select(o => o.File[..18]).Distinct().Count().ShouldBe(20);
        Directory.GetFiles(f.Drop.Processed).Length.ShouldBe(40);
    }

    [Fact]
    public async Task The_same_content_dropped_twice_lands_once()
    {
        await using var f = new DropFixture();
        var content = Events(("V1", T, "braking"), ("V2", T, "idle"));
        f.Drop_("vehicles_events_a.json", content);
        await f.RunOnceAsync();
        f.Drop_("vehicles_events_b.json", content);
        f.Drop_("vehicles_events_a.json", content);

        await f.RunOnceAsync();

        f.Events.ShouldBe(2);
        f.Outcome("vehicles_events_b.json").Status.ShouldBe(FileStatus.Duplicate);
        Directory.GetFiles(f.Drop.Processed).Select(Path.GetFileName).Order().ShouldBe(["vehicles_events_a.json", "vehicles_events_a~1.json", "vehicles_events_b.json"]);
    }

    [Fact]
    public async Task A_file_with_a_partial_name_is_never_claimed()
    {
        await using var f = new DropFixture(onceWait: TimeSpan.FromMilliseconds(300));
        var partial = Path.Combine(f.Drop.Incoming, "vehicles_events_1.json.part");
        File.WriteAllText(partial, Events(("V1", T, "braking")));

        await f.RunOnceAsync();

        File.Exists(partial).ShouldBeTrue();
        f.Outcomes.ShouldBeEmpty();
        File.Move(partial, Path.Combine(f.Drop.Incoming, "vehicles_events_1.json"));
        await f.RunOnceAsync();
        f.Events.ShouldBe(1);
    }

    [Fact]
    public async Task A_file_whose_size_keeps_changing_is_not_claimed_until_it_stops()
    {
        // The writer runs in this process: a pause of the process (GC, a starved machine) pauses it too, so the
        // stability window is the product's default (500 ms), far above the writer's 60 ms between appends.
        await using var f = new DropFixture(onceWait: TimeSpan.FromMilliseconds(1500), stableAfter: TimeSpan.FromMilliseconds(500));
        var path = Path.Combine(f.Drop.Incoming, "vehicles_events_slow.json");
        var content = Events(Enumerable.Range(0, 40).Select(i => ($"V{i}", T, "idle")).ToArray());
        var chunks = content.Chunk(content.Length / 30).Select(c => System.Text.Encoding.UTF8.GetBytes(c)).ToList();
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
        // The file exists before the first look, so the look cannot pass by finding nothing.
        stream.Write(chunks[0]);
        stream.Flush();
        var writer = Task.Run(async () =>
        {
            await using var s = stream;
            foreach (var chunk in chunks.Skip(1))
            {
                await Task.Delay(60);
                await s.WriteAsync(chunk);
                await s.FlushAsync();
            }
        });

        await f.RunOnceAsync();
        var claimedWhileWriting = f.Outcomes.Count;
        await writer;
        await f.RunOnceAsync();

        claimedWhileWriting.ShouldBe(0, "the file grew between every two looks, so it was still being written");
        f.Outcome("vehicles_events_slow.json").Status.ShouldBe(FileStatus.Landed);
        f.Events.ShouldBe(40);
    }
}
