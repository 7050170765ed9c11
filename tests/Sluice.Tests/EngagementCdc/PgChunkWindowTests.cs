using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.Postgres;
using Sluice.Core.Schema;

namespace Sluice.Tests.EngagementCdc;

/// <summary>
/// The incremental snapshot's watermarks in the change reader (DBLog): keys the stream changes from the moment a chunk's
/// window is set (just before its low watermark) to its high watermark are left out of the chunk, the chunk enters the stream at the high watermark as <c>_op = r</c> rows,
/// and watermarks of another chunk (or an earlier run) are passed over.
/// </summary>
public sealed class PgChunkWindowTests
{
    private const uint Relation = 16385;
    private static readonly CdcTable Content = new("content", ChangePolicy.Emit, ChangePolicy.Emit, "public", null, ["content_id"]);

    [Fact]
    public async Task Keys_changed_or_deleted_once_the_window_is_set_are_left_to_the_stream_and_the_rest_enter_at_the_high_one()
    {
        var reader = Reader();
        reader.Handle(RelationMessage());
        // Before the window is set: the chunk's SELECT sees this change, so the chunk's row is as new.
        reader.Handle(Begin(0x5000));
        reader.Handle(Update(Tuple("1", "video", "10", "t")));
        reader.Handle(Commit(0x5000, 0x5030));
        var window = new PgChunkWindow("1.1.abc", Content);
        reader.Window = window;
        // After it is set but before the low watermark: its commit may not be visible to the SELECT yet.
        reader.Handle(Begin(0x5040));
        reader.Handle(Update(Tuple("4", "video", "41", "t")));
        reader.Handle(Commit(0x5040, 0x5070));
        reader.Handle(Watermark(0x5100, "low 1.1.abc"));
        reader.Handle(Begin(0x5200));
        reader.Handle(Update(Tuple("2", "video", "20", "newer")));
        reader.Handle(PgMessages.Message('D', w => { w.UInt32(Relation); w.Byte((byte)'K'); Tuple("3", null, null, null)(w); }));
        reader.Handle(Commit(0x5200, 0x5230));
        window.Fill(Chunk(("1", "10"), ("2", "19"), ("3", "30"), ("4", "40"), ("5", "50")), ["1", "2", "3", "4", "5"]);
        reader.Handle(Watermark(0x5300, "high 1.1.abc"));

        var placed = (await window.Placement).ShouldNotBeNull();
        placed.ShouldBe(new ChunkPlacement(0x5300, 2, 3));
        reader.Window.ShouldBeNull();
        var piece = reader.Pending.Last();
        piece.CommitEnd.ShouldBe(0x5300);
        var rows = piece.Tables.ShouldHaveSingleItem();
        rows.Column<long>(0).ShouldBe([1L, 5L]);
        rows.Strings(rows.Schema.IndexOf(ChangeEnvelope.Op)).ShouldBe(["r", "r"]);
        rows.Column<long>(rows.Schema.IndexOf(ChangeEnvelope.Lsn)).ShouldBe([0x5300L, 0x5300L]);
        // The stream's own changes of 2, 3 and 4 are in the pieces before, at their commits.
        reader.Pending.Select(p => p.CommitEnd).ShouldBe([0x5030L, 0x5070L, 0x5230L, 0x5300L]);
    }

    [Fact]
    public async Task A_key_whose_changes_in_the_window_all_left_a_toasted_value_unchanged_keeps_that_value_from_the_chunk()
    {
        var reader = Reader();
        var window = new PgChunkWindow("4.1.t", Content);
        reader.Window = window;
        reader.Handle(RelationMessage());
        reader.Handle(Watermark(0x5100, "low 4.1.t"));
        reader.Handle(Begin(0x5200));
        // 2: the title (TOASTed) never carried; 3: carried by its second update; 4: deleted after.
        reader.Handle(Update(Tuple("2", "video", "21", Unchanged)));
        reader.Handle(Update(Tuple("3", "video", "31", Unchanged)));
        reader.Handle(Update(Tuple("3", "video", "32", "new title")));
        reader.Handle(Update(Tuple("4", "video", "41", Unchanged)));
        reader.Handle(PgMessages.Message('D', w => { w.UInt32(Relation); w.Byte((byte)'K'); Tuple("4", null, null, null)(w); }));
        reader.Handle(Commit(0x5200, 0x5230));
        window.Fill(Chunk(("1", "10"), ("2", "20"), ("3", "30"), ("4", "40"), ("5", "50")), ["1", "2", "3", "4", "5"]);
        reader.Handle(Watermark(0x5300, "high 4.1.t"));

        (await window.Placement).ShouldBe(new ChunkPlacement(0x5300, 3, 3));
        var rows = reader.Pending.Last().Tables.ShouldHaveSingleItem();
        rows.Column<long>(0).ShouldBe([1L, 2L, 5L]);
        // 2 gives only its title: the stream's newer length stays, as the marker tells every sink.
        rows.Strings(3).ShouldBe(["t", "t", "t"]);
        rows.Column<long>(2).ShouldBe([10L, null, 50L]);
        rows.Strings(1).ShouldBe(["video", null, "video"]);
        rows.Strings(rows.Schema.IndexOf(ChangeEnvelope.Unchanged)).ShouldBe([null, "[\"content_type\",\"length_seconds\"]", null]);
        rows.Strings(rows.Schema.IndexOf(ChangeEnvelope.Op)).ShouldBe(["r", "r", "r"]);
        // The stream's update of 2 marked the title unchanged.
        var streamed = reader.Pending.First().Tables.ShouldHaveSingleItem();
        streamed.Strings(streamed.Schema.IndexOf(ChangeEnvelope.Unchanged))[0].ShouldBe("[\"title\"]");
    }

    [Fact]
    public async Task A_truncate_between_the_watermarks_drops_the_whole_chunk()
    {
        var reader = Reader();
        var window = new PgChunkWindow("2.1.x", Content);
        reader.Window = window;
        reader.Handle(RelationMessage());
        reader.Handle(Watermark(0x5100, "low 2.1.x"));
        reader.Handle(Begin(0x5200));
        reader.Handle(PgMessages.Message('T', w => { w.UInt32(1); w.Byte(0); w.UInt32(Relation); }));
        reader.Handle(Commit(0x5200, 0x5230));
        window.Fill(Chunk(("1", "10"), ("2", "20")), ["1", "2"]);
        reader.Handle(Watermark(0x5300, "high 2.1.x"));

        (await window.Placement).ShouldBe(new ChunkPlacement(0x5300, 0, 2));
    }

    [Fact]
    public async Task Watermarks_of_another_chunk_are_passed_over_and_the_window_stays_for_its_own()
    {
        var reader = Reader();
        var window = new PgChunkWindow("3.2.new", Content);
        reader.Window = window;
        reader.Handle(RelationMessage());
        reader.Handle(Watermark(0x5000, "low 3.1.old"));
        reader.Handle(Watermark(0x5010, "high 3.1.old"));
        reader.Handle(Watermark(0x5020, "high 3.2.new"));

        // Its high watermark without its low one: read the chunk again rather than guess.
        (await window.Placement).ShouldBeNull();
        reader.Pending.ShouldBeEmpty();
        window.IsOpen.ShouldBeFalse();
    }

    private static ColumnBatch Chunk(params (string Id, string Length)[] rows)
    {
        var shape = new PgTableShape(Content, Columns);
        foreach (var (id, length) in rows)
        {
            shape.Set(0, id);
            shape.Set(1, "video");
            shape.Set(2, length);
            shape.Set(3, "t");
            shape.Commit(ChangeEnvelope.Read, 0);
        }

        return shape.Builder.Flush();
    }

    private static readonly FieldSpec[] Columns =
    [
        new("content_id", FieldType.Integer, false), new("content_type", FieldType.String, false),
        new("length_seconds", FieldType.Integer, false), new("title", FieldType.String, false),
    ];

    private static PgChangeReader Reader()
    {
        var options = new PostgresCdcOptions { Connection = PostgresConnectionOptions.FromEnvironment(), Publication = "p", Slot = "s", Tables = [] };
        return new PgChangeReader(options, [Content], "test", null!, NullLogger.Instance, TimeProvider.System);
    }

    private static byte[] Watermark(ulong lsn, string content) => PgMessages.Message('M', w =>
    {
        w.Byte(0);
        w.UInt64(lsn);
        w.CString(PgIncrementalSnapshot.WatermarkPrefix);
        var bytes = System.Text.Encoding.UTF8.GetBytes(content);
        w.UInt32((uint)bytes.Length);
        w.Bytes.AddRange(bytes);
    });

    private static byte[] RelationMessage() => PgMessages.Message('R', w =>
    {
        w.UInt32(Relation); w.CString("public"); w.CString("content"); w.Byte((byte)'d'); w.Int16(4);
        foreach (var (name, oid) in new[] { ("content_id", 20u), ("content_type", 25u), ("length_seconds", 23u), ("title", 25u) })
        {
            w.Byte(name == "content_id" ? (byte)1 : (byte)0); w.CString(name); w.UInt32(oid); w.UInt32(uint.MaxValue);
        }
    });

    private static byte[] Begin(ulong finalLsn) => PgMessages.Message('B', w => { w.UInt64(finalLsn); w.UInt64(0); w.UInt32(4711); });

    private static byte[] Commit(ulong lsn, ulong end) => PgMessages.Message('C', w => { w.Byte(0); w.UInt64(lsn); w.UInt64(end); w.UInt64(0); });

    private static byte[] Update(Action<PgWriter> newTuple) => PgMessages.Message('U', w => { w.UInt32(Relation); w.Byte((byte)'N'); newTuple(w); });

    /// <summary>A value the change did not carry (an unchanged TOASTed one): 'u' in the tuple.</summary>
    private const string Unchanged = "\u0001unchanged";

    private static Action<PgWriter> Tuple(string? id, string? type, string? length, string? title) => w =>
    {
        w.Int16(4);
        foreach (var value in new[] { id, type, length, title })
        {
            if (value == Unchanged) { w.Byte((byte)'u'); }
            else if (value is { } text) { w.Text(text); }
            else { w.Byte((byte)'n'); }
        }
    };
}
