using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// One row of the suite's stream: an item whose <see cref="Id"/> is its key, at source position <see cref="Offset"/>
/// (where its event starts; it ends <see cref="Item.Span"/> later, where the next begins). <see cref="Note"/> is the
/// column added mid-stream (null in batches without it).
/// </summary>
public sealed record Item(long Id, string Name, long Qty, long Offset, string? Note = null)
{
    public const long Span = 10;

    public static readonly DateTime T0 = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);

    /// <summary>The event time: later rows are later, whole seconds (every sink keeps seconds).</summary>
    public DateTime Time => T0.AddSeconds(Offset / Span);

    /// <summary>How the suite compares rows read back from any sink.</summary>
    public string Text => $"id={Id} name={Name} qty={Qty} note={Note}";
}

/// <summary>The suite's streams: rows numbered from 1 (offsets 10, 20, ...), cut into batches as a test says.</summary>
public static class ConformanceRows
{
    /// <summary><paramref name="count"/> rows over <paramref name="keys"/> keys (each key written again every <paramref name="keys"/> rows), names saying which write they are.</summary>
    public static List<Item> Stream(int count, int keys, int from = 1, bool note = false) =>
        Enumerable.Range(from, count).Select(i => new Item(1 + ((i - 1) % keys), $"w{i}", i * 3, i * Item.Span, note ? $"n{i}" : null)).ToList();

    /// <summary>The rows cut at <paramref name="cuts"/> (sizes of consecutive batches).</summary>
    public static List<List<Item>> Cut(IReadOnlyList<Item> rows, params int[] cuts)
    {
        var batches = new List<List<Item>>();
        var at = 0;
        foreach (var size in cuts)
        {
            batches.Add(rows.Skip(at).Take(size).ToList());
            at += size;
        }

        if (at < rows.Count) { batches.Add(rows.Skip(at).ToList()); }
        return batches;
    }

    public static readonly TableSchema Items = new("items",
    [
        new("id", FieldType.Integer, true), new("name", FieldType.String, false), new("qty", FieldType.Integer, false),
        new("ts", FieldType.Timestamp, true), new("_offset", FieldType.Integer, true),
    ]);

    /// <summary>The default shape: table <c>items</c>, with <c>note</c> when any row has one; the batch ends where its last row's event ends.</summary>
    public static RecordBatch Batch(IReadOnlyList<Item> rows, string table = "items")
    {
        var note = rows.Any(r => r.Note is not null);
        var fields = Items.Fields.ToList();
        var columns = new List<Array>
        {
            rows.Select(r => (long?)r.Id).ToArray(), rows.Select(r => r.Name).ToArray(), rows.Select(r => (long?)r.Qty).ToArray(),
            rows.Select(r => (DateTime?)r.Time).ToArray(), rows.Select(r => (long?)r.Offset).ToArray(),
        };
        if (note)
        {
            fields.Add(new FieldSpec("note", FieldType.String, false));
            columns.Add(rows.Select(r => r.Note).ToArray());
        }

        return new RecordBatch(new ColumnBatch(new TableSchema(table, fields), columns.ToArray(), rows.Count), rows[^1].Offset + Item.Span);
    }

    /// <summary>What an appending sink holds after <paramref name="written"/>: every row once.</summary>
    public static List<string> Appended(IEnumerable<Item> written) => written.Select(r => r.Text).Order(StringComparer.Ordinal).ToList();

    /// <summary>What a keyed sink holds after <paramref name="written"/>: the last row of each key.</summary>
    public static List<string> LastPerKey(IEnumerable<Item> written) =>
        written.GroupBy(r => r.Id).Select(g => g.Last().Text).Order(StringComparer.Ordinal).ToList();
}
