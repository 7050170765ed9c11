using Sluice.Recipes;
using Sluice.Connectors.Lake;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;

namespace Sluice.IntegrationTests.Lake;

/// <summary>
/// The lake sink's <c>mode: mirror</c> (docs/CDC.md, "Mirrors"): changes written as the CDC source emits them, and
/// <c>zone.table</c> read as the source table's current rows: inserts and updates by key, deletes, key changes,
/// truncates, TOASTed values an update left unchanged, replays, and folding the changes into one file.
/// </summary>
public sealed class LakeMirrorTests
{
    private const string Checkpoint = "test/mirror/lake:m";

    private static readonly TableSchema Items = new("items", [
        new FieldSpec("id", FieldType.Integer, true), new FieldSpec("name", FieldType.String, false), new FieldSpec("body", FieldType.String, false),
        .. ChangeEnvelope.Fields]);

    [Fact]
    public async Task Inserts_updates_deletes_a_key_change_and_a_truncate_leave_the_current_rows()
    {
        using var engine = new Engine();
        await using var sink = Mirror(engine);
        await sink.WriteAsync(Batch(100, C("r", 90, 0, 1, "one", "b1"), C("r", 90, 0, 2, "two", "b2"), C("r", 90, 0, 3, "three", "b3")), Checkpoint, default);
        await sink.WriteAsync(Batch(200,
            C("c", 110, 1, 4, "four", "b4"),
            C("u", 120, 1, 1, "uno", "b1"), C("u", 120, 2, 1, "un", "b1"),       // two updates of one row in one transaction: the last stands
            C("d", 130, 1, 2, null, null),                                        // DEFAULT identity: the delete carries the key only
            C("d", 140, 1, 3, null, null), C("c", 140, 2, 30, "three", "b3")), Checkpoint, default);  // UPDATE id = 30 WHERE id = 3
        Rows(engine).ShouldBe(["1|un|b1", "4|four|b4", "30|three|b3"]);

        await sink.WriteAsync(Batch(300, C("c", 210, 1, 5, "five", "b5"), C("t", 220, 1, null, null, null), C("c", 230, 1, 6, "six", "b6")), Checkpoint, default);
        Rows(engine).ShouldBe(["6|six|b6"], "the truncate empties the table; only what came after it stays");
        // The table is the source table: its own columns, no envelope.
        engine.Services.Query.Query("SELECT * FROM m.items").Columns.ShouldBe(["id", "name", "body"]);
    }

    [Fact]
    public async Task Unchanged_toasted_values_are_taken_from_the_previous_version_in_the_same_write_in_the_lake_and_across_a_key_change()
    {
        using var engine = new Engine();
        await using var sink = Mirror(engine);
        await sink.WriteAsync(Batch(100, C("r", 90, 0, 1, "one", "long-1"), C("r", 90, 0, 2, "two", "long-2")), Checkpoint, default);
        await sink.WriteAsync(Batch(200,
            C("u", 110, 1, 1, "uno", null, "[\"body\"]"),                                   // from the lake
            C("c", 120, 1, 3, "three", "long-3"), C("u", 130, 1, 3, "tres", null, "[\"body\"]"), // from this write
            C("d", 140, 1, 2, null, null), C("c", 140, 2, 20, "two", null, "[\"body\"]")), Checkpoint, default);  // key change: from the old key
        await sink.WriteAsync(Batch(300, C("u", 210, 1, 20, "dos", null, "[\"body\"]")), Checkpoint, default);
        Rows(engine).ShouldBe(["1|uno|long-1", "3|tres|long-3", "20|dos|long-2"]);

        // A row the mirror never held: its value cannot be known, so the change is dead-lettered, not stored with NULL.
        await sink.WriteAsync(Batch(400, C("u", 310, 1, 9, "nine", null, "[\"body\"]")), Checkpoint, default);
        Rows(engine).ShouldBe(["1|uno|long-1", "3|tres|long-3", "20|dos|long-2"]);
        var letter = engine.Services.DeadLetters.List("lake:m", Core.DeadLetters.DeadLetterStore.Pending).ShouldHaveSingleItem();
        letter.Reason.ShouldContain("items._unchanged: [\"body\"] cannot be stored by lake:m: the change did not carry these values");
    }

    [Fact]
    public async Task A_replayed_batch_and_changes_written_twice_change_nothing()
    {
        using var engine = new Engine();
        object?[][] first = [C("r", 90, 0, 1, "one", "b1"), C("r", 90, 0, 2, "two", "b2")], second = [C("u", 110, 1, 1, "uno", null, "[\"body\"]"), C("d", 120, 1, 2, null, null)];
        var changes = new[] { Batch(100, first), Batch(200, second) };
        await using (var sink = Mirror(engine))
        {
            foreach (var batch in changes) { await sink.WriteAsync(batch, Checkpoint, default); }
        }

        var once = Rows(engine);
        // A new sink (a restart) given the same changes cut into one batch skips them by its checkpoint ...
        await using (var sink = Mirror(engine))
        {
            await sink.WriteAsync(Batch(200, [.. first, .. second]), Checkpoint, default);
        }

        Rows(engine).ShouldBe(once);
        // ... and with the checkpoint lost, each change is at or below what the mirror holds for its key: left out.
        await using (var sink = Mirror(engine))
        {
            foreach (var batch in changes) { await sink.WriteAsync(batch, "another/checkpoint", default); }
        }

        engine.Count("SELECT count(*) FROM (SELECT * FROM read_parquet([" + string.Join(", ", engine.Services.Lake.Files("m.items").Select(f => LakeQueryEngine.Literal(f))) + "]))").ShouldBe(4, "nothing stored twice");
        Rows(engine).ShouldBe(once);
        once.ShouldBe(["1|uno|b1"]);
    }

    [Fact]
    public async Task Folding_keeps_the_current_rows_retires_superseded_changes_and_leaves_later_changes_alone()
    {
        using var engine = new Engine();
        await using var sink = Mirror(engine);
        var lsn = 100L;
        for (var round = 0; round < 5; round++)
        {
            await sink.WriteAsync(Batch(lsn + 50, C("c", lsn, 1, round * 10 + 1, $"a{round}", "x"), C("c", lsn, 2, round * 10 + 2, $"b{round}", "y"),
                C("u", lsn, 3, round * 10 + 1, $"A{round}", null, "[\"body\"]"), C("d", lsn, 4, round * 10 + 2, null, null)), Checkpoint, default);
            lsn += 100;
        }

        await sink.WriteAsync(Batch(lsn + 50, C("t", lsn, 1, null, null, null), C("c", lsn, 2, 100, "after", "z"), C("c", lsn, 3, 101, "gone", "z"), C("d", lsn, 4, 101, null, null)), Checkpoint, default);
        lsn += 100;
        await sink.WriteAsync(Batch(lsn + 50, C("u", lsn, 1, 100, "later", null, "[\"body\"]")), Checkpoint, default);
        var table = engine.Services.Lake.Table("m.items")!;
        table.IsMirror.ShouldBeTrue();
        var before = Rows(engine);
        before.ShouldBe(["100|later|z"]);

        var files = engine.Services.Lake.FileEntries("m.items");
        new MirrorCompactor(engine.Services.Lake).FoldAll(table, files.Take(files.Count - 1).ToList(), null, default).ShouldBe(files.Count - 1);
        Rows(engine).ShouldBe(before);
        var after = engine.Services.Lake.FileEntries("m.items");
        after.Count.ShouldBe(2, "the fold and the change committed after what it folded");
        after.Sum(f => f.Rows).ShouldBe(5, "the truncate, key 100's insert, key 101's delete (a tombstone) with its insert below it (no low-water mark), and key 100's later update remain");
        engine.Services.Lake.Garbage().Count.ShouldBe(files.Count - 1, "the folded files wait out their grace as garbage");
        files.Take(files.Count - 1).ShouldAllBe(f => File.Exists(f.Path));

        // The sink's fold takes every file: one file, the truncate and key 100's row. The source's low-water mark is
        // past key 101's delete: no change can come below it, so its tombstone refuses nothing, and goes with the
        // insert below it (every change of the delete's transaction is stored).
        new MirrorCompactor(engine.Services.Lake).Fold(table, 2, lsn, default).ShouldBe(2);
        engine.Services.Lake.FileEntries("m.items").ShouldHaveSingleItem().Rows.ShouldBe(2);
        Rows(engine).ShouldBe(before);
        // Key 100 deleted, then another key inserted, the mark below the delete: key 100 keeps its delete, as a
        // tombstone, and its last row below it.
        await sink.WriteAsync(Batch(lsn + 150, C("d", lsn + 100, 1, 100, null, null)), Checkpoint, default);
        await sink.WriteAsync(Batch(lsn + 250, C("c", lsn + 200, 1, 200, "new", "w")), Checkpoint, default);
        new MirrorCompactor(engine.Services.Lake).Fold(table, 2, lsn + 50, default).ShouldBe(3);
        engine.Services.Lake.FileEntries("m.items").ShouldHaveSingleItem().Rows.ShouldBe(4, "the truncate, key 100's row and tombstone, key 200");
        Rows(engine).ShouldBe(["200|new|w"]);

        // Changes older than what the folded mirror holds, stored late: an update of the deleted key 100 (its body not
        // carried), an insert of key 5 from before the truncate (a sink of another checkpoint: this one's would skip
        // them as a replay). Neither comes back, and nothing is dead-lettered.
        await using (var late = Mirror(engine))
        {
            await late.WriteAsync(Batch(lsn + 300, C("u", lsn + 50, 1, 100, "late", null, "[\"body\"]"), C("c", 550, 1, 5, "five", "b5")), "another/checkpoint", default);
        }

        Rows(engine).ShouldBe(["200|new|w"]);
        engine.Services.DeadLetters.List("lake:m", Core.DeadLetters.DeadLetterStore.Pending).ShouldBeEmpty();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_key_change_split_between_two_writes_takes_its_values_from_the_old_key_when_a_fold_of_every_file_came_between(bool otherWriteBetween)
    {
        // A cluster's consumer cuts batches by count: a key change's delete may end one write and its insert, the
        // TOASTed body not carried, start the next; another worker's write may land between them (then the delete's
        // file is not the newest). The fold between them keeps the old key's last row below its tombstone.
        using var engine = new Engine();
        await using var sink = Mirror(engine);
        await sink.WriteAsync(Batch(100, C("r", 90, 0, 1, "one", "long-1")), Checkpoint, default);
        await sink.WriteAsync(Batch(200, C("u", 110, 1, 1, "uno", null, "[\"body\"]")), Checkpoint, default);
        await sink.WriteAsync(Batch(210, C("d", 210, 1, 1, null, null)), Checkpoint, default);
        if (otherWriteBetween)
        {
            // Another worker's write: its own checkpoint.
            await using var other = Mirror(engine);
            await other.WriteAsync(Batch(300, C("c", 300, 1, 2, "two", "long-2")), "another/checkpoint", default);
        }

        var table = engine.Services.Lake.Table("m.items")!;
        var files = engine.Services.Lake.FileEntries("m.items").Count;
        new MirrorCompactor(engine.Services.Lake).Fold(table, 2, 200, default).ShouldBe(files, "every file, the delete's too");
        Rows(engine).ShouldBe(otherWriteBetween ? ["2|two|long-2"] : []);
        await sink.WriteAsync(Batch(400, C("c", 210, 2, 10, "ten", null, "[\"body\"]")), Checkpoint, default);
        Rows(engine).ShouldBe(otherWriteBetween ? ["2|two|long-2", "10|ten|long-1"] : ["10|ten|long-1"]);
        engine.Services.DeadLetters.List("lake:m", Core.DeadLetters.DeadLetterStore.Pending).ShouldBeEmpty();

        // Once the low-water mark is past the delete, every change of its transaction is stored and none can come
        // below it: the next fold drops the old key's row and its tombstone.
        new MirrorCompactor(engine.Services.Lake).Fold(table, 2, 211, default).ShouldBeGreaterThan(0);
        using var db = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT string_agg(_op || id, ' ' ORDER BY _lsn, _seq) FROM read_parquet([" + string.Join(", ", engine.Services.Lake.FileEntries("m.items").Select(f => $"'{f.Path}'")) + "])";
        cmd.ExecuteScalar().ShouldBe(otherWriteBetween ? "c10 c2" : "c10", "key 1 gone, tombstone and row");
        Rows(engine).ShouldBe(otherWriteBetween ? ["2|two|long-2", "10|ten|long-1"] : ["10|ten|long-1"]);
    }

    [Fact]
    public async Task A_table_without_a_key_or_without_the_change_envelope_stops_the_sink_with_the_reason()
    {
        using var engine = new Engine();
        await using var sink = Mirror(engine);
        var unkeyed = new RecordBatch(new ColumnBatch(new TableSchema("other", Items.Fields), Batch(1, C("c", 1, 1, 1, "a", "b")).Tables[0].Columns.ToArray(), 1), 2);
        (await Should.ThrowAsync<Core.SluiceException>(() => sink.WriteAsync(unkeyed, Checkpoint, default)))
            .Message.ShouldBe("lake sink lake:m (mode: mirror): table 'other' has no primary key (nor a replica identity index) in the source, so its rows cannot be told apart; give the source table a primary key, or its key columns here, e.g. keys: { \"other\": [id] }");
        var plain = new ColumnBatch(new TableSchema("items", [new FieldSpec("id", FieldType.Integer, true)]), [new long?[] { 1 }], 1);
        (await Should.ThrowAsync<Core.SluiceException>(() => sink.WriteAsync(new RecordBatch(plain, 3), Checkpoint, default)))
            .Message.ShouldStartWith("lake sink lake:m (mode: mirror): table 'items' has no _op, _lsn, _seq: a mirror applies changes");
    }

    [Fact]
    public void Mirror_options_are_checked_at_load_naming_the_sink_and_the_property()
    {
        using var temp = new TempFolder();
        var errors = Load(temp, "files-source", """
            source: { type: http, streams: {} }
            """, "mode: mirror\n        zone: m\n        partition_by: ts");
        errors.ShouldContain(e => e.Contains("p.sinks: sink 'lake:m' has mode: mirror, which needs a change-data-capture source (postgres_cdc)", StringComparison.Ordinal));
        errors.ShouldNotContain(e => e.Contains("needs `keys", StringComparison.Ordinal), "keys may be left out: the source's primary key is the default");
        errors.ShouldContain(e => e.Contains("sinks[0].partition_by: lake sink in zone 'm': mode: mirror takes no partition_by", StringComparison.Ordinal));

        var cdc = """
            source:
                  type: postgres_cdc
                  connection: { database: x }
                  tables: { items: { on_update: emit, on_delete: ignore }, other: { on_update: emit, on_delete: emit } }
            """;
        errors = Load(temp, "cdc-ignore", cdc, "mode: mirror\n        zone: m\n        keys: { items: [id], other: [id] }");
        errors.ShouldHaveSingleItem().ShouldContain("sinks[0].keys: lake sink lake:m: the source's tables entry 'items' has on_update: emit, on_delete: ignore, so the mirror of 'items' would miss changes; set both to emit");
        Load(temp, "cdc-ok", cdc.Replace("on_delete: ignore", "on_delete: emit", StringComparison.Ordinal), "mode: mirror\n        zone: m\n        keys: { items: [id] }").ShouldBeEmpty();
        Load(temp, "log-keys", cdc, "zone: m\n        partition_by: ts\n        keys: { items: [id] }")
            .ShouldHaveSingleItem().ShouldContain("sinks[0].keys: lake sink: keys are a mirror's (mode: mirror)");
    }

    [Fact]
    public void A_mirror_behind_a_source_that_sends_rows_is_refused_at_load()
    {
        using var temp = new TempFolder();
        var folder = TenantAnalytics.RecipeVariant.Create(temp, "tenant-analytics",
            ("zone: analytics\n        partition_by: event_ts", "zone: analytics\n        mode: mirror\n        keys: { events: [event_id] }"));
        var errors = new RecipeLoader(RecipeComponents.Create()).TryLoad(folder).Errors.All.Select(e => e.ToString()).ToList();
        errors.ShouldHaveSingleItem().ShouldContain(".sinks: sink 'lake:analytics' has mode: mirror, which needs a change-data-capture source (postgres_cdc) for its rows' keys and change envelope, but the source is 'http'");
    }

    private static readonly TableSchema Keyed = new("items", Items.Fields) { Key = ["id"] };

    [Fact]
    public async Task Without_keys_a_mirror_is_keyed_by_the_source_tables_primary_key()
    {
        using var engine = new Engine();
        await using var sink = new LakeSink(engine.Services, new LakeSinkOptions { Mode = LakeSinkMode.Mirror, Zone = "m", PositionColumn = ChangeEnvelope.Lsn, CompactInterval = TimeSpan.Zero });
        var keyed = Batch(100, C("r", 90, 0, 1, "one", "b1"), C("r", 90, 0, 2, "two", "b2"));
        var items = keyed.Tables[0];
        var withKey = new ColumnBatch(Keyed, items.Columns.ToArray(), items.Count);
        await sink.WriteAsync(new RecordBatch(withKey, 100), Checkpoint, default);
        var update = Batch(200, C("u", 110, 1, 1, "uno", "b1"), C("d", 120, 1, 2, null, null)).Tables[0];
        await sink.WriteAsync(new RecordBatch(new ColumnBatch(Keyed, update.Columns.ToArray(), update.Count), 200), Checkpoint, default);
        Rows(engine).ShouldBe(["1|uno|b1"]);

        // A table without a key in the source and none given: the write stops, naming the table and the way out.
        (await Should.ThrowAsync<Core.SluiceException>(() => sink.WriteAsync(Batch(300, C("c", 210, 1, 3, "three", "b3")), Checkpoint, default)))
            .Message.ShouldContain("table 'items' has no primary key (nor a replica identity index) in the source, so its rows cannot be told apart; give the source table a primary key, or its key columns here, e.g. keys: { \"items\": [id] }");
    }

    [Fact]
    public void A_backfill_job_feeding_a_mirror_is_refused_at_load_saying_mirrors_need_a_postgres_cdc_source()
    {
        using var temp = new TempFolder();
        var folder = Path.Combine(temp.Path, "backfill-mirror");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), """
            name: backfill-mirror
            jobs:
              refill: { type: postgres_backfill, connection: { database: x }, pipeline: cdc, table: items, time: ts, key: id }
              refill_log: { type: postgres_backfill, connection: { database: x }, pipeline: cdc, table: items, time: ts, key: id, sinks: ["lake:log"] }
            pipelines:
              cdc:
                source: { type: postgres_cdc, connection: { database: x }, tables: { items: { on_update: emit, on_delete: emit } } }
                sinks:
                  - { type: lake, zone: m, mode: mirror }
                  - { type: lake, zone: log, partition_by: ts }
            """);
        var errors = new RecipeLoader(RecipeComponents.Create()).TryLoad(folder).Errors.All.Select(e => e.ToString()).ToList();
        errors.ShouldHaveSingleItem().ShouldContain(
            "jobs.refill.pipeline: postgres_backfill: sink 'lake:m' of pipeline 'cdc' has mode: mirror, which needs a postgres_cdc source (it applies changes by key and position); this job sends rows read from a table, not changes.");
        errors.ShouldNotContain(e => e.Contains("no primary key", StringComparison.Ordinal));
    }

    private static List<string> Load(TempFolder temp, string name, string source, string sink)
    {
        var folder = Path.Combine(temp.Path, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $"""
            name: {name}
            pipelines:
              p:
                {source}
                sinks:
                  - type: lake
                    {sink}
            """);
        return new RecipeLoader(RecipeComponents.Create()).TryLoad(folder).Errors.All.Select(e => e.ToString()).ToList();
    }

    private static LakeSink Mirror(Engine engine) => new(engine.Services, new LakeSinkOptions
    {
        Mode = LakeSinkMode.Mirror, Zone = "m", PositionColumn = ChangeEnvelope.Lsn, CompactInterval = TimeSpan.Zero,
        Keys = new Dictionary<string, IReadOnlyList<string>> { ["items"] = ["id"] },
    });

    private static List<string> Rows(Engine engine) =>
        engine.Services.Query.Query("SELECT id, name, body FROM m.items ORDER BY id").Rows.Select(r => string.Join('|', r.Select(LakeQueryEngine.FormatValue))).ToList();

    private static object?[] C(string op, long lsn, long seq, long? id, string? name, string? body, string? unchanged = null) =>
        [id, name, body, op, lsn, seq, op == "r" ? null : lsn * 10, op == "r" ? null : DateTime.UtcNow, null, unchanged];

    private static RecordBatch Batch(long position, params object?[][] rows)
    {
        var columns = Items.Fields.Select(f => Column(f, rows.Length)).ToArray();
        for (var r = 0; r < rows.Length; r++)
        {
            for (var c = 0; c < columns.Length; c++) { columns[c].SetValue(rows[r][c], r); }
        }

        return new RecordBatch(new ColumnBatch(Items, columns, rows.Length), position);
    }

    private static Array Column(FieldSpec field, int rows) => field.Type switch
    {
        FieldType.Integer => new long?[rows],
        FieldType.Timestamp => new DateTime?[rows],
        _ => new string?[rows],
    };
}
