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

    /// <summary>
    /// Batches of a cluster's shared log (JetStream) written by the sinks of two workers, each numbering its own
    /// batches: an event either stored, delivered again to the other (cut and mixed differently) or to the same one,
    /// lands once, in the lake zone or in PostgreSQL; a new event at a position the worker used before still lands.
    /// </summary>
    [Theory]
    [InlineData("lake")]
    [InlineData("postgres")]
    public async Task Batches_of_a_shared_log_land_each_event_once_whichever_worker_writes_them(string store)
    {
        var schema = $"rr_{Guid.NewGuid():N}"[..20];
        await using var pg = Npgsql.NpgsqlDataSource.Create(Support.ServerSettings.PostgresConnectionString);
        try
        {
            using var h = new ReminderHarness(editStore: store == "lake" ? null : yaml => yaml.Replace("lake:\n  zone: reminders", $"postgres:\n  schema: {schema}", StringComparison.Ordinal));
            var errors = new ConfigErrors();
            var mapping = RecordMapping.Load(Path.Combine(h.RecipeFolder, "mappings", "mongo.yaml"), AttorneyEventModel.Schema, errors)!;
            errors.ThrowIfAny();
            using var step = new AttorneyEventsStep(h.Services, new AttorneyEventsStepOptions { Mapping = mapping, Store = h.Options.Store });
            await using var a = new ReminderStoreSink(ReminderWarehouses.Create(h.Services, h.Options.Store, h.Recipe.Name), "events:repeat-reminder/mongo");
            await using var b = new ReminderStoreSink(ReminderWarehouses.Create(h.Services, h.Options.Store, h.Recipe.Name), "events:repeat-reminder/mongo");
            var events = Enumerable.Range(0, 20).Select(i => i == 12
                ? h.Mongo($"c{i}", T0).Replace($"\"attorney_email\": \"{h.Attorney("ann")}\", ", "", StringComparison.Ordinal)
                : h.Mongo($"c{i}", T0)).ToList();
            const string key = "pipeline:repeat-reminder/mongo:sink:reminder_store:worker:";
            async Task WriteAsync(ReminderStoreSink sink, string worker, int from, int to, long position)
            {
                var batch = await step.ApplyAsync(Batch(events, from, to, position), CancellationToken.None);
                await sink.WriteAsync(batch with { Log = LogSequences.Of("SLUICE_test_mongo@1", Enumerable.Range(from, to - from).Select(i => (long)i)) }, key + worker, CancellationToken.None);
            }

            await WriteAsync(a, "a", 0, 10, 1);
            await WriteAsync(b, "b", 5, 15, 1);      // its ack wait ran out: 5..9 came again to the other worker, with new ones
            await WriteAsync(a, "a", 0, 15, 2);      // and all of them again to the first
            await WriteAsync(b, "b", 15, 20, 1);     // new events at a position the worker used before (numbered again after a restart)

            async Task<long> CountAsync(string sql)
            {
                if (store == "lake") { return h.Engine.Count(string.Format(System.Globalization.CultureInfo.InvariantCulture, sql, "reminders")); }
                await using var cmd = pg.CreateCommand(string.Format(System.Globalization.CultureInfo.InvariantCulture, sql, schema));
                return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
            }

            (await CountAsync("SELECT count(*) FROM {0}.source_event")).ShouldBe(20);
            (await CountAsync("SELECT count(DISTINCT position) FROM {0}.source_event")).ShouldBe(20);
            (await CountAsync("SELECT count(*) FROM {0}.attorney_events")).ShouldBe(19);
            (await CountAsync("SELECT count(DISTINCT source_id) FROM {0}.attorney_events")).ShouldBe(19);
            h.Services.DeadLetters.List("events:repeat-reminder/mongo").ShouldHaveSingleItem().Position.ShouldBe($"tenant {h.Client()}, landing offset 12");
        }
        finally
        {
            await using var drop = pg.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Rows as the http source delivers them (JSON as received, the tenant, arrival, landing offset), offsets from..to-1.</summary>
    private static RecordBatch Batch(List<string> events, int from, int to, long? position = null)
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
        ], rows.Count), position ?? to);
    }
}
