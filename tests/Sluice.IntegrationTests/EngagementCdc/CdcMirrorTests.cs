using Sluice.Recipes;
using Npgsql;
using Sluice.Core;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// <c>mode: mirror</c> of the <c>postgres</c> and <c>clickhouse</c> sinks end to end (docs/CDC.md, "Mirrors"): after
/// inserts, updates, deletes, key changes, updates that leave a TOASTed value untouched and truncates, each mirror holds
/// exactly the source table: Postgres compared with <c>EXCEPT</c> both ways over every column, ClickHouse's
/// <c>&lt;table&gt;_current</c> view (FINAL, live rows) compared row by row. Also after a SIGKILL mid-stream and a restart.
/// </summary>
public sealed class CdcMirrorTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    /// <summary>A note over 2 KB of random hex: incompressible, so Postgres stores it out of line (TOAST).</summary>
    private const string ToastedNote = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200))";

    private const string Schema =
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12,2), qty bigint, note text, updated timestamptz, flag boolean);" +
        "CREATE TABLE pairs (a int, b text, v text, PRIMARY KEY (a, b));" +
        "INSERT INTO items SELECT g, 'item ' || g, g * 1.25, g * 10, 'short ' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour', g % 2 = 0 FROM generate_series(1, 20) g;" +
        "INSERT INTO pairs SELECT g, 'b' || g, 'v' || g FROM generate_series(1, 5) g;";

    [Fact]
    public async Task Mirrors_equal_the_source_after_updates_deletes_key_changes_toast_untouched_updates_and_truncates()
    {
        await using var scenario = await MirrorScenarioAsync();
        await scenario.ExecuteAsync($"UPDATE items SET note = {ToastedNote} WHERE id IN (1, 2)");
        using var engine = new Engine();
        await using var run = scenario.Start(engine);
        await WaitForMirrorsAsync(scenario);

        // An update that leaves the TOASTed note untouched (marked unchanged): the mirror keeps its note.
        await scenario.ExecuteAsync("UPDATE items SET qty = 999 WHERE id = 2");
        // A key change of a row whose TOASTed note the update did not touch: the note moves with the row.
        await scenario.ExecuteAsync("UPDATE items SET id = 100 WHERE id = 1");
        // Two updates of one row in one transaction, a delete, a delete and re-insert of one key in one transaction.
        await scenario.ExecuteAsync("BEGIN; UPDATE items SET name = 'first' WHERE id = 3; UPDATE items SET name = 'second', flag = NULL WHERE id = 3; COMMIT;");
        await scenario.ExecuteAsync("DELETE FROM items WHERE id IN (4, 5)");
        await scenario.ExecuteAsync("BEGIN; DELETE FROM items WHERE id = 6; INSERT INTO items (id, name) VALUES (6, 'reborn'); COMMIT;");
        await scenario.ExecuteAsync("INSERT INTO items (id, name, price) VALUES (21, 'new', 1234567890.12)");
        // Truncate, then rows again, in one transaction and in the next.
        await scenario.ExecuteAsync("BEGIN; INSERT INTO pairs VALUES (9, 'x', 'gone'); TRUNCATE pairs; INSERT INTO pairs VALUES (1, 'b1', 'after'); COMMIT;");
        await scenario.ExecuteAsync("INSERT INTO pairs VALUES (2, 'b2', 'later'); UPDATE pairs SET b = 'moved' WHERE a = 2;");
        await WaitForMirrorsAsync(scenario);

        (await scenario.ScalarAsync<long>("SELECT qty FROM mirror.items WHERE id = 2")).ShouldBe(999);
        (await scenario.ScalarAsync<string>("SELECT md5(note) FROM mirror.items WHERE id = 100")).ShouldBe(await scenario.ScalarAsync<string>("SELECT md5(note) FROM items WHERE id = 100"));
        (await scenario.ScalarAsync<long>("SELECT count(*) FROM mirror.pairs")).ShouldBe(2);
        // ClickHouse keeps the history as versions; the view reads the current state only.
        long.Parse(await scenario.ClickHouseAsync($"SELECT count() FROM `{scenario.ClickHouseDb}`.`items` WHERE _deleted = 1"), System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task A_SIGKILL_mid_stream_and_a_restart_still_end_with_mirrors_equal_to_the_source()
    {
        await using var scenario = await MirrorScenarioAsync();
        var changes = 0;
        using (var first = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc"))
        {
            await WaitForMirrorsAsync(scenario);
            using var stop = new CancellationTokenSource();
            var changing = Task.Run(async () =>
            {
                var random = new Random(7);
                while (!stop.IsCancellationRequested) { await RandomChangeAsync(scenario, random, ++changes); }
            });
            const string Generated = "SELECT count(*) FROM mirror.items WHERE id BETWEEN 1001 AND 4999";
            await CdcScenario.WaitUntilAsync(async () => await scenario.ScalarAsync<long>(Generated) >= 20, Patience,
                async () => $"{await scenario.ScalarAsync<long>(Generated)} generated rows in the mirror\n{first.Stderr}");
            first.Kill();
            await Task.Delay(300);
            await stop.CancelAsync();
            await changing;
        }

        await RandomChangeAsync(scenario, new Random(8), ++changes);
        using var second = SluiceProcess.Start(scenario.DataRoot, scenario.ProcessEnvironment, "run", "engagement-cdc");
        await WaitForMirrorsAsync(scenario, second);
        changes.ShouldBeGreaterThan(40);
        (await second.StopAsync()).ShouldBe(0, second.Stderr);
    }

    [Fact]
    public async Task A_mirror_of_a_table_without_a_key_stops_the_start_naming_the_table_the_sink_and_the_mode()
    {
        await using var scenario = await MirrorScenarioAsync(extraTable: "keyless");
        await scenario.ExecuteAsync("CREATE TABLE keyless (x int, y text); INSERT INTO keyless VALUES (1, 'a');");
        using var engine = new Engine();
        await using var host = new Sluice.Hosting.RecipeHost(scenario.LoadRecipe(), engine.Services);
        var error = await Should.ThrowAsync<FatalException>(() => host.RunOnceAsync(CancellationToken.None));
        error.Message.ShouldBe(
            "postgres_cdc: table public.keyless has no primary key (nor a replica identity index), but sink 'postgres:mirror' has mode: mirror, which keeps one row per key; " +
            "give the table a primary key, take it out of tables:, or use mode: changes in that sink.");
        // Nothing was written before the check.
        (await scenario.ScalarAsync<long>("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'mirror'")).ShouldBe(0);
    }

    [Fact]
    public void A_mirror_sink_behind_a_source_that_is_not_change_data_capture_is_refused_at_load()
    {
        using var temp = new TempFolder();
        var recipe = TenantAnalytics.RecipeVariant.Create(temp, "repeat-reminder",
            ("      - type: reminder_store         # the store of store.yaml: source_event, attorney_events, dead letters, one transaction",
             "      - type: postgres\n        mode: mirror\n        schema: mirror\n      - type: clickhouse\n        name: ch\n        mode: mirror\n        table: events"));
        var error = Should.Throw<Core.Config.ConfigException>(() => new Core.Recipes.RecipeLoader(RecipeComponents.Create()).Load(recipe));
        error.Message.ShouldContain("pipelines.salesforce.sinks: sink 'postgres:mirror' has mode: mirror, which needs a change-data-capture source (postgres_cdc) for its rows' keys and change envelope, but the source is 'http'");
        error.Message.ShouldContain("sink 'ch' has mode: mirror");
    }

    /// <summary>One random change: mostly inserts of new ids (from 1001 up), updates and deletes of existing rows, now and then a key change or a truncate of <c>pairs</c>.</summary>
    private static async Task RandomChangeAsync(CdcScenario scenario, Random random, int n)
    {
        var id = random.Next(1, 1000 + n);
        var sql = random.Next(10) switch
        {
            0 or 1 or 2 => $"INSERT INTO items (id, name, qty, updated) VALUES ({1000 + n}, 'gen {n}', {n}, now()) ON CONFLICT DO NOTHING; INSERT INTO pairs VALUES ({n}, 'g', 'gen') ON CONFLICT DO NOTHING",
            3 or 4 => $"UPDATE items SET qty = coalesce(qty, 0) + 1, name = name || '+' WHERE id = (SELECT id FROM items ORDER BY abs(id - {id}) LIMIT 1)",
            5 => $"BEGIN; UPDATE items SET price = {n}.5 WHERE id = (SELECT max(id) FROM items); UPDATE items SET price = {n}.75, flag = {(n % 2 == 0 ? "true" : "false")} WHERE id = (SELECT max(id) FROM items); COMMIT;",
            6 => $"DELETE FROM items WHERE id = (SELECT id FROM items ORDER BY abs(id - {id}) LIMIT 1); UPDATE pairs SET v = v || '!' WHERE a % 3 = {n % 3}",
            7 => $"UPDATE items SET id = {5000 + n} WHERE id = (SELECT min(id) FROM items WHERE id < 5000)",
            8 => $"UPDATE pairs SET b = b || 'k' WHERE a = (SELECT min(a) FROM pairs)",
            _ => n % 5 == 0 ? "TRUNCATE pairs" : $"DELETE FROM pairs WHERE a = (SELECT max(a) FROM pairs)",
        };
        await scenario.ExecuteAsync(sql);
    }

    private static async Task<CdcScenario> MirrorScenarioAsync(string? extraTable = null)
    {
        var scenario = await CdcScenario.CreateAsync();
        await scenario.ExecuteAsync(Schema);
        var pg = new NpgsqlConnectionStringBuilder { Host = scenario.Pg.Host, Port = scenario.Pg.Port, Username = scenario.Pg.User, Password = scenario.Pg.Password, Database = scenario.Database };
        var extra = extraTable is null ? "" : $"\n        {extraTable}: {{ on_update: emit, on_delete: emit }}";
        await File.WriteAllTextAsync(Path.Combine(scenario.RecipeFolder, "recipe.yaml"), $$"""
            name: engagement-cdc
            pipelines:
              mirror:
                source:
                  type: postgres_cdc
                  connection: { database: "{{scenario.Database}}" }
                  publication: {{scenario.Slot}}
                  slot: {{scenario.Slot}}
                  tables:
                    items: { on_update: emit, on_delete: emit }
                    pairs: { on_update: emit, on_delete: emit }{{extra}}
                  status_interval: 200ms
                  heartbeat: 1s
                sinks:
                  - type: postgres
                    mode: mirror
                    schema: mirror
                    connection: '{{pg.ConnectionString}}'
                  - type: clickhouse
                    name: ch_items
                    mode: mirror
                    url: "{{scenario.ClickHouseUrl}}"
                    database: {{scenario.ClickHouseDb}}
                    table: items
                    insert_linger: 0ms
                    retry_max_delay: 500ms
                  - type: clickhouse
                    name: ch_pairs
                    mode: mirror
                    url: "{{scenario.ClickHouseUrl}}"
                    database: {{scenario.ClickHouseDb}}
                    table: pairs
                    insert_linger: 0ms
                    retry_max_delay: 500ms
            """);
        return scenario;
    }

    private const string ItemColumns = "id, name, price, qty, note, updated, flag";

    /// <summary>Waits until every mirror equals its source table, and says how they differ when they do not.</summary>
    private static async Task WaitForMirrorsAsync(CdcScenario scenario, SluiceProcess? process = null) =>
        await CdcScenario.WaitUntilAsync(async () => await DifferencesAsync(scenario) == "", Patience,
            async () => await DifferencesAsync(scenario) + (process is null ? "" : "\n" + process.Stderr));

    private static async Task<string> DifferencesAsync(CdcScenario scenario)
    {
        var problems = new List<string>();
        try
        {
            foreach (var (table, columns) in new[] { ("items", ItemColumns), ("pairs", "a, b, v") })
            {
                var missing = await scenario.ScalarAsync<long>($"SELECT count(*) FROM (SELECT {columns} FROM {table} EXCEPT SELECT {columns} FROM mirror.{table}) d");
                var extra = await scenario.ScalarAsync<long>($"SELECT count(*) FROM (SELECT {columns} FROM mirror.{table} EXCEPT SELECT {columns} FROM {table}) d");
                if (missing + extra > 0) { problems.Add($"postgres mirror.{table}: {missing} source rows missing or different, {extra} rows not in the source"); }
            }

            var itemsPg = await RowsAsync(scenario,
                "SELECT concat_ws('|', id, coalesce(name, '~'), coalesce(price::text, '~'), coalesce(qty::text, '~'), coalesce(md5(note), '~'), " +
                "coalesce((extract(epoch FROM updated) * 1000000)::bigint::text, '~'), coalesce(flag::int::text, '~')) FROM items ORDER BY id");
            var itemsCh = await scenario.ClickHouseAsync(
                "SELECT concat(toString(id), '|', ifNull(name, '~'), '|', ifNull(toString(price), '~'), '|', ifNull(toString(qty), '~'), '|', ifNull(lower(hex(MD5(note))), '~'), '|', " +
                $"ifNull(toString(updated), '~'), '|', ifNull(toString(flag), '~')) FROM `{scenario.ClickHouseDb}`.`items_current` ORDER BY id");
            Compare(problems, "clickhouse items_current", itemsPg, itemsCh);
            var pairsPg = await RowsAsync(scenario, "SELECT concat_ws('|', a, b, coalesce(v, '~')) FROM pairs ORDER BY a, b");
            var pairsCh = await scenario.ClickHouseAsync($"SELECT concat(toString(a), '|', b, '|', ifNull(v, '~')) FROM `{scenario.ClickHouseDb}`.`pairs_current` ORDER BY a, b");
            Compare(problems, "clickhouse pairs_current", pairsPg, pairsCh);
        }
        catch (Exception e) when (e is NpgsqlException or ShouldAssertException or HttpRequestException or TaskCanceledException)
        {
            problems.Add(e.Message.Split('\n')[0]);
        }

        return string.Join("; ", problems);
    }

    private static void Compare(List<string> problems, string what, List<string> source, string mirror)
    {
        var rows = mirror.Length == 0 ? [] : mirror.Split('\n').ToList();
        if (!rows.SequenceEqual(source))
        {
            problems.Add($"{what}: {source.Except(rows).Count()} source rows missing or different (e.g. {source.Except(rows).FirstOrDefault()}), {rows.Except(source).Count()} not in the source (e.g. {rows.Except(source).FirstOrDefault()})");
        }
    }

    private static async Task<List<string>> RowsAsync(CdcScenario scenario, string sql)
    {
        await using var connection = new NpgsqlConnection(scenario.Pg.ConnectionString("sluice-test"));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync()) { rows.Add(reader.GetString(0)); }
        return rows;
    }
}
