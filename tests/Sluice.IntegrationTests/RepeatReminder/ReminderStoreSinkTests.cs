using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;
using Sluice.Recipes.Reminders.Pipeline;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The push path's step and sink on their own: a replay after a restart, cut differently, lands each event once.</summary>
public sealed class ReminderStoreSinkTests
{
    [Fact]
    public async Task A_replayed_batch_cut_differently_lands_only_its_new_rows_and_one_at_or_below_the_position_nothing()
    {
        using var h = new ReminderHarness();
        var errors = new ConfigErrors();
        var mapping = RecordMapping.Load(Path.Combine(h.RecipeFolder, "mappings", "mongo.yaml"), AttorneyEventModel.Schema, errors)!;
        errors.ThrowIfAny();
        using var step = new AttorneyEventsStep(h.Services, new AttorneyEventsStepOptions { Mapping = mapping, Store = h.Options.Store });
        await using var sink = new ReminderStoreSink(ReminderWarehouses.Create(h.Services, h.Options.Store, h.Recipe.Name), "events:repeat-reminder/mongo");
        var events = Enumerable.Range(0, 15).Select(i => i == 12
            ? h.Mongo($"c{i}", T0).Replace($"\"attorney_email\": \"{h.Attorney("ann")}\", ", "", StringComparison.Ordinal)
            : h.Mongo($"c{i}", T0)).ToList();

        await sink.WriteAsync(await step.ApplyAsync(Batch(events, 0, 10), CancellationToken.None), "test:push", CancellationToken.None);
        await sink.WriteAsync(await step.ApplyAsync(Batch(events, 5, 15), CancellationToken.None), "test:push", CancellationToken.None);
        await sink.WriteAsync(await step.ApplyAsync(Batch(events, 0, 15), CancellationToken.None), "test:push", CancellationToken.None);

        h.Engine.Count("SELECT count(*) FROM reminders.source_event").ShouldBe(15);
        h.Engine.Count("SELECT count(DISTINCT position) FROM reminders.source_event").ShouldBe(15);
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events").ShouldBe(14);
        h.Engine.Count($"SELECT count(*) FROM reminders.attorney_events WHERE client_key IS NOT NULL AND client_id LIKE 'enc1:%'").ShouldBe(14);
        var letter = h.Services.DeadLetters.List("events:repeat-reminder/mongo").Single();
        letter.Position.ShouldBe($"tenant {h.Client()}, landing offset 12");
    }

    /// <summary>Rows as the http source delivers them (JSON as received, the tenant, arrival, landing offset), offsets from..to-1.</summary>
    private static RecordBatch Batch(List<string> events, int from, int to)
    {
        var schema = new TableSchema("mongo", [new("client_id", FieldType.String, true), new("_json", FieldType.String, true), new("received_at", FieldType.Timestamp, true), new("_offset", FieldType.Integer, true)]);
        var rows = Enumerable.Range(from, to - from).ToList();
        var client = System.Text.Json.JsonDocument.Parse(events[0]).RootElement.GetProperty("client_id").GetString();
        return new RecordBatch(new ColumnBatch(schema,
        [
            rows.Select(_ => (string?)client).ToArray(),
            rows.Select(i => (string?)events[i]).ToArray(),
            rows.Select(_ => (DateTime?)T0.UtcDateTime).ToArray(),
            rows.Select(i => (long?)i).ToArray(),
        ], rows.Count), to);
    }
}
