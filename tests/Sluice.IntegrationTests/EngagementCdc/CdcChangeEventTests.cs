using System.Text.Json;
using System.Text.RegularExpressions;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// The change envelope end to end (docs/CDC.md, "Change events"): before-images, TOASTed values an update did not touch,
/// key changes, TRUNCATE, two changes of one row in one transaction, quoted names and patterns, and tables added to the
/// recipe later. Changes of the <c>content</c> table are also written to a ClickHouse change log keyed by
/// (content_id, _lsn, _seq), so every change shows as its own row.
/// </summary>
public sealed partial class CdcChangeEventTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120); // a process start alone took 55 s at load 100

    /// <summary>A title over 2 KB of random hex: incompressible, so Postgres stores it out of line (TOAST).</summary>
    private const string ToastedTitle = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200))";

    [Fact]
    public async Task Default_identity_marks_an_untouched_toasted_title_unchanged_and_the_enrichment_keeps_it()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => AddChangeLog(y, "content", "content_id"));
        await scenario.ExecuteAsync($"UPDATE content SET title = {ToastedTitle} WHERE content_id = 1");
        var title = await scenario.ScalarAsync<string>("SELECT title FROM content WHERE content_id = 1");
        (await scenario.ScalarAsync<long>("SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'content'::regclass")).ShouldBeGreaterThan(0, "the title is stored out of line");
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await WaitForRowsAsync(scenario, "content", 22);

        // The issue's case: the cache was loaded with the title; an update of another column must not blank it.
        await scenario.ExecuteAsync("UPDATE content SET length_seconds = 999 WHERE content_id = 1");
        var eventId = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (1, 7, 'play', 9990, 'web') RETURNING event_id");
        await scenario.ExecuteAsync("DELETE FROM content WHERE content_id = 22");
        await WaitForRowsAsync(scenario, "content", 24);
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 1, Patience, async () => $"{await scenario.ClickHouseCountAsync()} enriched events");

        var enriched = await scenario.ClickHouseAsync($"SELECT concat(toString(length_seconds), '|', title) FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id = {eventId}");
        enriched.ShouldBe($"999|{title}");

        var update = await Row(scenario, "content", "_op = 'u'", "length_seconds, ifNull(title, 'NULL'), _unchanged, ifNull(_before, 'NULL'), _seq, _txid > 0, toYear(_commit_ts)");
        update.ShouldBe($"999\tNULL\t[\"title\"]\tNULL\t1\t1\t{DateTime.UtcNow.Year}");
        var delete = await Row(scenario, "content", "_op = 'd'", "content_id, _before, ifNull(_unchanged, 'NULL')");
        delete.ShouldBe("22\t{\"content_id\":\"22\"}\tNULL");
    }

    [Fact]
    public async Task Full_identity_takes_the_untouched_toasted_title_from_the_old_row_and_carries_whole_before_images()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => AddChangeLog(y, "content", "content_id"));
        await scenario.ExecuteAsync("ALTER TABLE content REPLICA IDENTITY FULL");
        await scenario.ExecuteAsync($"UPDATE content SET title = {ToastedTitle} WHERE content_id = 1");
        var title = await scenario.ScalarAsync<string>("SELECT title FROM content WHERE content_id = 1");
        var oldLength = await scenario.ScalarAsync<long>("SELECT length_seconds FROM content WHERE content_id = 1");
        var type2 = await scenario.ScalarAsync<string>("SELECT content_type FROM content WHERE content_id = 2");
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await WaitForRowsAsync(scenario, "content", 22);

        await scenario.ExecuteAsync("UPDATE content SET length_seconds = 999 WHERE content_id = 1");
        await scenario.ExecuteAsync("DELETE FROM content WHERE content_id = 2");
        await WaitForRowsAsync(scenario, "content", 24);

        (await Row(scenario, "content", "_op = 'u'", "length_seconds, title, ifNull(_unchanged, 'NULL')")).ShouldBe($"999\t{title}\tNULL");
        var before = JsonDocument.Parse(await Row(scenario, "content", "_op = 'u'", "_before")).RootElement;
        before.GetProperty("length_seconds").GetString().ShouldBe(oldLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
        before.GetProperty("title").GetString().ShouldBe(title);
        var deleted = JsonDocument.Parse(await Row(scenario, "content", "_op = 'd'", "_before")).RootElement;
        deleted.GetProperty("content_id").GetString().ShouldBe("2");
        deleted.GetProperty("content_type").GetString().ShouldBe(type2);
    }

    [Fact]
    public async Task Two_updates_in_one_transaction_a_key_change_and_a_truncate_are_each_their_own_change()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => AddChangeLog(y, "content", "content_id"));
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await WaitForRowsAsync(scenario, "content", 22);

        await scenario.ExecuteAsync("BEGIN; UPDATE content SET length_seconds = 1 WHERE content_id = 2; UPDATE content SET length_seconds = 2 WHERE content_id = 2; COMMIT;");
        await scenario.ExecuteAsync("UPDATE content SET content_id = 100 WHERE content_id = 3");
        var eventId = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (2, 7, 'play', 1000, 'web') RETURNING event_id");
        await WaitForRowsAsync(scenario, "content", 26);
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 1, Patience, async () => $"{await scenario.ClickHouseCountAsync()} enriched events");

        // Both updates kept, in order, told apart by _seq under one commit LSN; a replay would collapse onto them.
        (await scenario.ClickHouseAsync($"SELECT groupArray(length_seconds), groupArray(_seq), uniqExact(_lsn) FROM (SELECT * FROM {Table(scenario, "content")} FINAL WHERE _op = 'u' ORDER BY _seq)"))
            .ShouldBe("[1,2]\t[1,2]\t1");
        // The enrichment (a mirror of content) ends at the last one.
        (await scenario.ClickHouseAsync($"SELECT length_seconds FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id = {eventId}")).ShouldBe("2");
        // The key change: a delete of the old key, then an insert of the new one, in one transaction.
        (await scenario.ClickHouseAsync($"SELECT groupArray(_op), groupArray(content_id), groupArray(_seq), uniqExact(_lsn) FROM (SELECT * FROM {Table(scenario, "content")} FINAL WHERE content_id IN (3, 100) AND _op != 'r' ORDER BY _seq)"))
            .ShouldBe("['d','c']\t[3,100]\t[1,2]\t1");

        await scenario.ExecuteAsync("TRUNCATE content");
        var afterTruncate = await scenario.ScalarAsync<long>("INSERT INTO engagement_events (content_id, user_id, event_type, duration_ms, device) VALUES (2, 7, 'play', 1000, 'web') RETURNING event_id");
        await WaitForRowsAsync(scenario, "content", 27);
        (await Row(scenario, "content", "_op = 't'", "content_id, ifNull(title, 'NULL'), _seq")).ShouldBe("0\tNULL\t1");
        // The cache emptied with the table: the event's content is unknown now.
        await CdcScenario.WaitUntilAsync(async () => await scenario.ClickHouseCountAsync() == 2, Patience, async () => $"{await scenario.ClickHouseCountAsync()} enriched events");
        (await scenario.ClickHouseAsync($"SELECT ifNull(content_type, 'NULL') FROM {scenario.ClickHouseDb}.events_enriched FINAL WHERE event_id = {afterTruncate}")).ShouldBe("NULL");
    }

    [Fact]
    public async Task Quoted_mixed_case_and_dotted_names_several_schemas_and_patterns_stream_end_to_end()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y =>
        {
            y = y.Replace("        engagement_events: { on_update: ignore, on_delete: ignore }   # inserts only, as the write-up (op = c)",
                "        engagement_events: { on_update: ignore, on_delete: ignore }\n" +
                "        '\"MixedCase\"': { on_update: emit }\n" +
                "        '\"Quoted . Table\"': {}\n" +
                "        'sales.order_*': {}", StringComparison.Ordinal);
            y = AddChangeLog(y, "MixedCase", "Id");
            y = AddChangeLog(y, "Quoted . Table", "id");
            y = AddChangeLog(y, "sales.order_items", "id");
            return AddChangeLog(y, "sales.order_notes", "id");
        });
        await scenario.ExecuteAsync(
            "CREATE TABLE \"MixedCase\" (\"Id\" int PRIMARY KEY, \"Name\" text); INSERT INTO \"MixedCase\" VALUES (1, 'one');" +
            "CREATE TABLE \"Quoted . Table\" (id int PRIMARY KEY, note text); INSERT INTO \"Quoted . Table\" VALUES (1, 'a');" +
            "CREATE SCHEMA sales; CREATE TABLE sales.order_items (id int PRIMARY KEY, qty int); INSERT INTO sales.order_items VALUES (1, 5);" +
            "CREATE TABLE sales.order_notes (id int PRIMARY KEY, note text); CREATE TABLE sales.orders (id int PRIMARY KEY); INSERT INTO sales.orders VALUES (1);");
        using var engine = new Engine();
        await using (var run = scenario.Start(engine))
        {
            await WaitForRowsAsync(scenario, "MixedCase", 1);
            await scenario.ExecuteAsync(
                "INSERT INTO \"MixedCase\" VALUES (2, 'two'); UPDATE \"MixedCase\" SET \"Name\" = 'uno' WHERE \"Id\" = 1;" +
                "INSERT INTO \"Quoted . Table\" VALUES (2, 'b'); INSERT INTO sales.order_items VALUES (2, 6); INSERT INTO sales.order_notes VALUES (1, 'n');" +
                "INSERT INTO sales.orders VALUES (2);");
            await WaitForRowsAsync(scenario, "MixedCase", 3);
            await WaitForRowsAsync(scenario, "Quoted . Table", 2);
            await WaitForRowsAsync(scenario, "sales.order_items", 2);
            await WaitForRowsAsync(scenario, "sales.order_notes", 1);
        }

        (await scenario.ClickHouseAsync($"SELECT groupArray(Name) FROM (SELECT * FROM {Table(scenario, "MixedCase")} FINAL ORDER BY _lsn, _seq, Id)")).ShouldBe("['one','two','uno']");
        (await scenario.ClickHouseAsync($"SELECT groupArray(note) FROM (SELECT * FROM {Table(scenario, "Quoted . Table")} FINAL ORDER BY id)")).ShouldBe("['a','b']");
        (await scenario.ClickHouseAsync($"SELECT groupArray(qty) FROM (SELECT * FROM {Table(scenario, "sales.order_items")} FINAL ORDER BY id)")).ShouldBe("[5,6]");
        // sales.orders matches no entry: not published, not streamed.
        (await scenario.ScalarAsync<long>($"SELECT count(*) FROM pg_publication_tables WHERE pubname = '{scenario.Slot}' AND schemaname = 'sales'")).ShouldBe(2);

        // A pattern that matches nothing stops the start, naming it.
        var recipe = Path.Combine(scenario.RecipeFolder, "recipe.yaml");
        await File.WriteAllTextAsync(recipe, (await File.ReadAllTextAsync(recipe)).Replace("'sales.order_*': {}", "'sales.invoice_*': {}", StringComparison.Ordinal));
        await using var host = new RecipeHost(scenario.LoadRecipe(), engine.Services);
        var error = await Should.ThrowAsync<SluiceException>(() => host.RunOnceAsync(CancellationToken.None));
        error.Message.ShouldContain("'sales.invoice_*' (a pattern that matches no table)");
    }

    [Fact]
    public async Task A_table_added_to_the_recipe_after_the_first_start_gets_its_existing_rows_once()
    {
        await using var scenario = await CdcScenario.CreateAsync(tweak: y => AddChangeLog(y, "extra", "id"));
        await scenario.ExecuteAsync("CREATE TABLE extra (id int PRIMARY KEY, note text); INSERT INTO extra SELECT g, 'old ' || g FROM generate_series(1, 30) g");
        using var folder = new TempFolder("sluice-data");
        using var logs = new CapturingLogs();
        using var services = new EngineServices(new DataDirectory(folder.Path), TimeProvider.System, logs);
        await using (var host = new RecipeHost(scenario.LoadRecipe(), services))
        {
            await host.RunOnceAsync(CancellationToken.None);
        }

        var recipe = Path.Combine(scenario.RecipeFolder, "recipe.yaml");
        await File.WriteAllTextAsync(recipe, (await File.ReadAllTextAsync(recipe)).Replace(
            "        engagement_events: { on_update: ignore, on_delete: ignore }", "        extra: {}\n        engagement_events: { on_update: ignore, on_delete: ignore }", StringComparison.Ordinal));
        await scenario.ExecuteAsync("INSERT INTO extra VALUES (31, 'new 31')");
        await using (var host = new RecipeHost(scenario.LoadRecipe(), services))
        {
            await host.RunOnceAsync(CancellationToken.None);
        }

        logs.Text.ShouldContain("Tables added to the recipe after the first start: public.extra; read their 31 existing rows");
        await scenario.ExecuteAsync("INSERT INTO extra VALUES (32, 'new 32')");
        await using (var host = new RecipeHost(scenario.LoadRecipe(), services))
        {
            await host.RunOnceAsync(CancellationToken.None);
        }

        (await scenario.ClickHouseAsync($"SELECT count(), uniqExact(id), countIf(_op = 'r'), countIf(_op = 'c') FROM {Table(scenario, "extra")} FINAL")).ShouldBe("32\t32\t31\t1");
        Regex.Count(logs.Text, "Tables added to the recipe").ShouldBe(1);
    }

    /// <summary>Adds a ClickHouse sink that keeps every change of <paramref name="table"/>: sorted by (key, _lsn, _seq).</summary>
    private static string AddChangeLog(string yaml, string table, string key)
    {
        var database = DatabaseLine().Match(yaml).Groups[1].Value;
        var url = UrlLine().Match(yaml).Groups[1].Value;
        var name = "log_" + NonWord().Replace(table, "_").ToLowerInvariant();
        var sink =
            $"      - type: clickhouse\n        name: {name}\n        url: \"{url}\"\n        database: {database}\n        table: '{table}'\n" +
            $"        order_by: [{key}, _lsn, _seq]\n        version: _lsn\n        insert_linger: 0ms\n        retry_max_delay: 500ms\n";
        return yaml.Replace("      - type: redis_realtime", sink + "      - type: redis_realtime", StringComparison.Ordinal);
    }

    private static string Table(CdcScenario scenario, string table) => $"`{scenario.ClickHouseDb}`.`{table}`";

    private static async Task WaitForRowsAsync(CdcScenario scenario, string table, long rows)
    {
        async Task<long> Count()
        {
            try { return long.Parse(await scenario.ClickHouseAsync($"SELECT count() FROM {Table(scenario, table)} FINAL"), System.Globalization.CultureInfo.InvariantCulture); }
            catch (Exception e) when (e is HttpRequestException or ShouldAssertException) { return -1; }
        }

        await CdcScenario.WaitUntilAsync(async () => await Count() >= rows, Patience, async () => $"{table}: {await Count()} of {rows} rows");
    }

    private static Task<string> Row(CdcScenario scenario, string table, string where, string columns) =>
        scenario.ClickHouseAsync($"SELECT {columns} FROM {Table(scenario, table)} FINAL WHERE {where}");

    [GeneratedRegex("database: (t4_[0-9a-f]+)")]
    private static partial Regex DatabaseLine();

    [GeneratedRegex("- type: clickhouse\\n        name: clickhouse\\n        url: \"([^\"]+)\"")]
    private static partial Regex UrlLine();

    [GeneratedRegex("\\W")]
    private static partial Regex NonWord();
}
