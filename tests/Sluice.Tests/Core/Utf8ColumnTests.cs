using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Tests.Core;

public sealed class Utf8ColumnTests
{
    private static readonly TableSchema Schema = new("t", [new FieldSpec("s", FieldType.String, false), new FieldSpec("n", FieldType.Integer, false)]);

    /// <summary>A batch of <paramref name="texts"/> with its text built as UTF-8, and a row aborted half-way between each pair.</summary>
    private static ColumnBatch Batch(params string?[] texts)
    {
        var builder = new ColumnBatchBuilder(Schema, 16, i => i == 0);
        for (var i = 0; i < texts.Length; i++)
        {
            var text = (Utf8ColumnBuilder)builder[0];
            text.Set(Encoding.UTF8.GetBytes("aborted, never seen " + i));
            builder.AbortRow();
            if (texts[i] is { } t) { text.Set(Encoding.UTF8.GetBytes(t)); }
            ((ValueColumnBuilder<long>)builder[1]).Set(i);
            builder.CommitRow();
        }

        return builder.Flush();
    }

    [Fact]
    public void A_utf8_column_keeps_values_nulls_and_empty_text_apart_through_growth_and_flushes()
    {
        string?[] texts = [.. Enumerable.Range(0, 40).Select(i => i % 5 == 0 ? null : i % 7 == 0 ? "" : new string('é', i * 10))];
        var batch = Batch(texts);
        var column = batch.Text(0)!;
        column.Count.ShouldBe(40);
        for (var i = 0; i < texts.Length; i++)
        {
            column.IsNull(i).ShouldBe(texts[i] is null, $"row {i}");
            column.GetString(i).ShouldBe(texts[i], $"row {i}");
            batch.Value(0, i).ShouldBe(texts[i]);
        }

        column.ByteCount.ShouldBe(texts.Sum(t => t is null ? 0 : Encoding.UTF8.GetByteCount(t)));
        batch.Strings(0).ShouldBe(texts);
        batch.Columns[0].ShouldBeSameAs(batch.Columns[0], "decoded once");
        batch.Column<long>(1).ShouldBe(Enumerable.Range(0, 40).Select(i => (long?)i).ToArray());
    }

    [Fact]
    public void Gather_and_concat_keep_text_as_utf8_and_put_each_value_where_it_belongs()
    {
        var first = Batch("a", null, "東京", "");
        var second = Batch(null, "z", "grüße");
        var gathered = second.Gather([2, 0, 2, 1]);
        gathered.Text(0).ShouldNotBeNull();
        gathered.Strings(0).ShouldBe(["grüße", null, "grüße", "z"]);
        gathered.Column<long>(1).ShouldBe([2L, 0L, 2L, 1L]);

        var joined = ColumnBatchConcat.Join(Schema, [first, second, gathered]);
        joined.Text(0).ShouldNotBeNull();
        joined.Strings(0).ShouldBe(["a", null, "東京", "", null, "z", "grüße", "grüße", null, "grüße", "z"]);
        joined.Column<long>(1).ShouldBe([0L, 1L, 2L, 3L, 0L, 1L, 2L, 2L, 0L, 2L, 1L]);
        Enumerable.Range(0, joined.Count).Select(joined.Text(0)!.IsNull).ShouldBe([false, true, false, false, true, false, false, false, true, false, false]);
    }

    [Fact]
    public void A_piece_of_strings_among_utf8_pieces_joins_them_as_strings()
    {
        var strings = new ColumnBatch(Schema, [new string?[] { "s", null }, new long?[] { 7, 8 }], 2);
        var joined = ColumnBatchConcat.Join(Schema, [Batch("a"), strings, Batch(null, "b")]);
        joined.Text(0).ShouldBeNull();
        joined.Strings(0).ShouldBe(["a", "s", null, null, "b"]);
    }

    [Fact]
    public void A_batch_refuses_a_column_with_neither_values_nor_text()
    {
        Should.Throw<ArgumentException>(() => new ColumnBatch(Schema, [null, new long?[1]], [null, null], 1)).Message.ShouldContain("column 0");
    }

    [Fact]
    public void A_builder_that_grew_for_a_huge_value_starts_the_next_batch_small_and_still_right()
    {
        var builder = new ColumnBatchBuilder(Schema, 16, i => i == 0);
        var text = (Utf8ColumnBuilder)builder[0];
        var huge = new string('x', 6 << 20);
        text.Set(Encoding.UTF8.GetBytes(huge));
        builder.CommitRow();
        builder.Flush().Strings(0).ShouldBe([huge]);
        text.Set("after"u8);
        builder.CommitRow();
        builder.Flush().Strings(0).ShouldBe(["after"]);
    }
}
