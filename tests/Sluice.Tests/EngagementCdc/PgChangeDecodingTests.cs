using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Schema;

namespace Sluice.Tests.EngagementCdc;

/// <summary>
/// pgoutput decoding into the change envelope: old tuples ('K' key, 'O' whole row), unchanged TOASTed values ('u'),
/// key changes, truncates ('T'), sequence numbers, and where an added table's snapshot goes in the stream.
/// </summary>
public sealed class PgChangeDecodingTests
{
    private const uint Relation = 16385;
    private const ulong FinalLsn = 0x5000;
    private static readonly DateTime CommitTime = new(2026, 12, 5, 10, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void Full_identity_fills_an_unchanged_value_from_the_old_row_and_carries_the_whole_old_row()
    {
        var rows = Decode('f', Update('O', Tuple("7", "video", "100", "long title"), Tuple("7", "video", "200", null, unchanged: 3)));

        rows.Count.ShouldBe(1);
        rows[0]["content_id"].ShouldBe(7L);
        rows[0]["length_seconds"].ShouldBe(200L);
        rows[0]["title"].ShouldBe("long title");
        rows[0][ChangeEnvelope.Op].ShouldBe("u");
        rows[0][ChangeEnvelope.Unchanged].ShouldBeNull();
        rows[0][ChangeEnvelope.Before].ShouldBe("""{"content_id":"7","content_type":"video","length_seconds":"100","title":"long title"}""");
        rows[0][ChangeEnvelope.Lsn].ShouldBe((long)FinalLsn);
        rows[0][ChangeEnvelope.Seq].ShouldBe(1L);
        rows[0][ChangeEnvelope.TxId].ShouldBe(4711L);
        rows[0][ChangeEnvelope.CommitTs].ShouldBe(CommitTime);
    }

    [Fact]
    public void Default_identity_marks_an_unchanged_value_instead_of_delivering_null()
    {
        var rows = Decode('d', Update(null, null, Tuple("7", "video", "200", null, unchanged: 3)));

        rows.Count.ShouldBe(1);
        rows[0]["title"].ShouldBeNull();
        rows[0][ChangeEnvelope.Unchanged].ShouldBe("""["title"]""");
        ChangeEnvelope.UnchangedColumns((string?)rows[0][ChangeEnvelope.Unchanged]).ShouldBe(["title"]);
        rows[0][ChangeEnvelope.Before].ShouldBeNull();
    }

    [Fact]
    public void A_key_change_is_a_delete_of_the_old_key_then_an_insert_of_the_new_one()
    {
        var rows = Decode('d', Update('K', Tuple("7", null, null, null), Tuple("8", "video", "200", "t")));

        rows.Select(r => ((string?)r[ChangeEnvelope.Op], r["content_id"], r[ChangeEnvelope.Seq])).ShouldBe([("d", 7L, 1L), ("c", 8L, 2L)]);
        rows[0][ChangeEnvelope.Before].ShouldBe("""{"content_id":"7"}""");
        rows[1][ChangeEnvelope.Before].ShouldBeNull();
        rows.Select(r => r[ChangeEnvelope.Lsn]).Distinct().Count().ShouldBe(1);
    }

    [Fact]
    public void A_delete_carries_its_old_key_and_a_truncate_is_a_row_of_its_own()
    {
        var delete = PgMessages.Message('D', w => { w.UInt32(Relation); w.Byte((byte)'K'); Tuple("9", null, null, null)(w); });
        var truncate = PgMessages.Message('T', w => { w.UInt32(1); w.Byte(0); w.UInt32(Relation); });

        var rows = Decode('d', delete, truncate);

        rows.Select(r => ((string?)r[ChangeEnvelope.Op], r["content_id"], r[ChangeEnvelope.Seq])).ShouldBe([("d", 9L, 1L), ("t", null, 2L)]);
        rows[0][ChangeEnvelope.Before].ShouldBe("""{"content_id":"9"}""");
    }

    [Fact]
    public void Two_updates_of_one_row_in_one_transaction_are_told_apart_by_their_sequence()
    {
        var rows = Decode('d', Update(null, null, Tuple("7", "video", "1", "t")), Update(null, null, Tuple("7", "video", "2", "t")));

        rows.Select(r => (r["length_seconds"], r[ChangeEnvelope.Lsn], r[ChangeEnvelope.Seq])).ShouldBe([(1L, (long)FinalLsn, 1L), (2L, (long)FinalLsn, 2L)]);
    }

    [Fact]
    public void An_added_tables_snapshot_goes_in_before_the_first_transaction_at_or_after_its_consistent_point()
    {
        var reader = Reader();
        long? placed = null;
        var snapshot = new ColumnBatch(new TableSchema("extra", [new FieldSpec("id", FieldType.Integer, false)]), [new long?[] { 1 }], 1);
        reader.Added = new AddedTablesSnapshot(0x6000, [snapshot], 1, p => placed = p);
        reader.Handle(RelationMessage('d'));
        reader.Handle(Begin(0x5000));
        reader.Handle(Commit(0x5000, 0x5030));
        placed.ShouldBeNull();

        reader.Handle(Begin(0x6010));
        placed.ShouldBe(0x6000);
        reader.Handle(Update(null, null, Tuple("7", "video", "1", "t")));
        reader.Handle(Commit(0x6010, 0x6040));

        var ends = reader.Pending.Select(p => (p.CommitEnd, p.Tables.Count > 0 ? p.Tables[0].Schema.Table : null)).ToList();
        ends.ShouldBe([(0x5030L, null), (0x6000L, "extra"), (0x6040L, "content")]);
    }

    [Theory]
    [InlineData("content", "public", "content", true)]
    [InlineData("Content", "public", "content", true)]
    [InlineData("\"MixedCase\"", "public", "MixedCase", true)]
    [InlineData("\"MixedCase\"", "public", "mixedcase", false)]
    [InlineData("\"Quoted . Table\"", "public", "Quoted . Table", true)]
    [InlineData("public.*", "public", "anything", true)]
    [InlineData("public.*", "sales", "anything", false)]
    [InlineData("sales.order_*", "sales", "order_items", true)]
    [InlineData("sales.order_*", "sales", "orders", false)]
    [InlineData("\"Sales\".\"a*\"", "Sales", "a*", true)]
    [InlineData("\"Sales\".\"a*\"", "Sales", "ab", false)]
    public void Table_entries_match_as_sql_spells_names(string entry, string schema, string table, bool matches)
    {
        PgTablePattern.Parse(entry, out var error).ShouldNotBeNull(error).Matches(schema, table, "public").ShouldBe(matches);
    }

    [Theory]
    [InlineData("Quoted . Table", "needs the name in double quotes")]
    [InlineData("\"open", "unterminated quoted name")]
    [InlineData("a.b.c", "at most schema.table")]
    [InlineData("a..b", "an empty name")]
    public void Table_entries_that_are_not_names_are_refused_with_the_reason(string entry, string reason)
    {
        PgTablePattern.Parse(entry, out var error).ShouldBeNull();
        error.ShouldNotBeNull().ShouldContain(reason);
    }

    [Fact]
    public void A_value_that_cannot_be_read_dead_letters_its_row_whole_and_the_changes_around_it_still_flow()
    {
        var root = Path.Combine(Path.GetTempPath(), "sluice-pgdecode-" + Guid.NewGuid().ToString("N"));
        try
        {
            var letters = new DeadLetterStore(new MetadataStore(new DataDirectory(root)), TimeProvider.System);
            // A key change whose new row has a length that is not an integer, then a good update.
            var rows = Decode('d', letters, Update('K', Tuple("7", null, null, null), Tuple("8", "video", "abc", "t")), Update(null, null, Tuple("8", "video", "5", "t")));

            // The delete of the old key flows; the insert is not applied as a row with NULL in its place.
            rows.Select(r => ((string?)r[ChangeEnvelope.Op], r["content_id"], r["length_seconds"], r[ChangeEnvelope.Seq])).ShouldBe([("d", 7L, null, 1L), ("u", 8L, 5L, 2L)]);
            var letter = letters.List("test", DeadLetterStore.Pending).ShouldHaveSingleItem();
            letter.Reason.ShouldContain("column length_seconds: 'abc' is not a");
            letter.Reason.ShouldStartWith("insert of ");
            letter.Payload.ShouldBe("""{"content_id":"8","content_type":"video","length_seconds":"abc","title":"t"}""");
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            if (Directory.Exists(root)) { Directory.Delete(root, recursive: true); }
        }
    }

    private static List<Dictionary<string, object?>> Decode(char identity, params byte[][] changes) => Decode(identity, null, changes);

    private static List<Dictionary<string, object?>> Decode(char identity, DeadLetterStore? letters, params byte[][] changes)
    {
        var reader = Reader(letters);
        reader.Handle(RelationMessage(identity));
        reader.Handle(Begin(FinalLsn));
        foreach (var change in changes) { reader.Handle(change); }
        reader.Handle(Commit(FinalLsn, FinalLsn + 0x30));
        var rows = new List<Dictionary<string, object?>>();
        foreach (var batch in reader.Pending.SelectMany(p => p.Tables))
        {
            for (var row = 0; row < batch.Count; row++)
            {
                rows.Add(batch.Schema.Fields.Select((f, c) => (f.Name, Value: batch.Value(c, row))).ToDictionary(p => p.Name, p => p.Value));
            }
        }

        return rows;
    }

    private static PgChangeReader Reader(DeadLetterStore? letters = null)
    {
        var options = new PostgresCdcOptions
        {
            Connection = PostgresConnectionOptions.FromEnvironment(),
            Publication = "p",
            Slot = "s",
            Tables = [],
        };
        CdcTable[] tables = [new CdcTable("content", ChangePolicy.Emit, ChangePolicy.Emit, "public", null, ["content_id"])];
        return new PgChangeReader(options, tables, "test", letters!, NullLogger.Instance, TimeProvider.System);
    }

    private static byte[] RelationMessage(char identity) => PgMessages.Message('R', w =>
    {
        w.UInt32(Relation); w.CString("public"); w.CString("content"); w.Byte((byte)identity); w.Int16(4);
        foreach (var (name, oid) in new[] { ("content_id", 20u), ("content_type", 25u), ("length_seconds", 23u), ("title", 25u) })
        {
            w.Byte(name == "content_id" ? (byte)1 : (byte)0); w.CString(name); w.UInt32(oid); w.UInt32(uint.MaxValue);
        }
    });

    private static byte[] Begin(ulong finalLsn) => PgMessages.Message('B', w =>
    {
        w.UInt64(finalLsn);
        w.UInt64((ulong)((CommitTime - new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc)).Ticks / 10));
        w.UInt32(4711);
    });

    private static byte[] Commit(ulong lsn, ulong end) => PgMessages.Message('C', w => { w.Byte(0); w.UInt64(lsn); w.UInt64(end); w.UInt64(0); });

    private static byte[] Update(char? old, Action<PgWriter>? oldTuple, Action<PgWriter> newTuple) => PgMessages.Message('U', w =>
    {
        w.UInt32(Relation);
        if (old is { } kind) { w.Byte((byte)kind); oldTuple!(w); }
        w.Byte((byte)'N');
        newTuple(w);
    });

    /// <summary>A tuple of the four content columns: text, 'n' for null, or 'u' at <paramref name="unchanged"/>.</summary>
    private static Action<PgWriter> Tuple(string? id, string? type, string? length, string? title, int unchanged = -1) => w =>
    {
        w.Int16(4);
        string?[] values = [id, type, length, title];
        for (var i = 0; i < 4; i++)
        {
            if (i == unchanged) { w.Byte((byte)'u'); }
            else if (values[i] is { } text) { w.Text(text); }
            else { w.Byte((byte)'n'); }
        }
    };
}
