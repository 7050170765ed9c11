using System.Text.Json;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Pipeline.FilesToSinksTests;

namespace Sluice.IntegrationTests.Examples;

/// <summary>recipes/examples/ndjson-to-http-api, run by <c>./sluice run --once</c> against a local API on 127.0.0.1.</summary>
public sealed class NdjsonToHttpApiTests
{
    [Fact]
    public async Task Good_ndjson_lines_are_posted_to_the_api_and_bad_ones_are_dead_lettered_with_file_line_and_reason()
    {
        using var api = new WebhookReceiver();
        await using var world = await ExampleWorld.CreateAsync("ndjson-to-http-api");
        world.Env["SIGNUPS_API_URL"] = api.Url;
        var incoming = Directory.CreateDirectory(Path.Combine(world.DataRoot, "signups-drop", "incoming")).FullName;
        await File.WriteAllTextAsync(Path.Combine(incoming, "signups_0301.ndjson"), """
            {"email": "ann@x.io", "signed_up_at": "2026-03-01T10:00:00Z", "plan": "team", "seats": 5}
            {"email": "bob@y.org", "signed_up_at": "yesterday", "plan": "solo", "seats": 1}
            {"email": "cy@z.net", "signed_up_at": "2026-03-01T11:00:00Z", "plan": "solo", "seats": "one"}
            not json at all
            {"email": "di@w.com", "signed_up_at": "2026-03-01T12:00:00Z", "plan": "team", "seats": 12}

            """);

        await world.RunOnceAsync();

        api.Accepted.SelectMany(body => body.EnumerateArray()).Select(row => JsonSerializer.Serialize(row)).ShouldBe([
            """{"email":"ann@x.io","signed_up_at":"2026-03-01T10:00:00.000000Z","plan":"team","seats":5}""",
            """{"email":"di@w.com","signed_up_at":"2026-03-01T12:00:00.000000Z","plan":"team","seats":12}""",
        ]);
        Meta(world.DataRoot, "SELECT source || ' | ' || position || ' | ' || reason FROM dead_letters ORDER BY id").ShouldBe([
            "files:ndjson-to-http-api/signups | signups_0301.ndjson: line 2, record 2, field 'signed_up_at' | unparsable timestamp 'yesterday' (expected ISO-8601, for example 2025-11-08T10:30:00Z)",
            "files:ndjson-to-http-api/signups | signups_0301.ndjson: line 3, record 3, field 'seats' | wrong type: expected a whole number, got text 'one'",
            "files:ndjson-to-http-api/signups | signups_0301.ndjson: line 4, record 4 | malformed JSON at byte 2: 'not json at all' is an invalid JSON literal. Expected the literal 'null'.",
        ]);
        Directory.EnumerateFiles(Path.Combine(world.DataRoot, "signups-drop", "processed")).Select(Path.GetFileName).ShouldBe(["signups_0301.ndjson"]);
    }
}
