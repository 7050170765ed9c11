using System.Globalization;
using Sluice.Core.Schema;

namespace Sluice.Transforms;

/// <summary>
/// Where a row stands in its stream, the same however batches are cut: <c>_offset</c> (with <c>_index</c> for a child
/// row of an event) from the HTTP landing log, <c>_seq</c> from change data capture; else the batch's position and the
/// row's index, which holds only while a replay cuts batches as before.
/// </summary>
internal sealed class RowPlace
{
    private readonly long?[]? _offset;
    private readonly long?[]? _index;
    private readonly long _position;

    public RowPlace(ColumnBatch table, long position)
    {
        ArgumentNullException.ThrowIfNull(table);
        _offset = Integers(table, "_offset") ?? Integers(table, ChangeEnvelope.Seq);
        _index = Integers(table, "_index");
        _position = position;
        Kind = table.Schema.IndexOf("_offset") >= 0 ? "offset" : table.Schema.IndexOf(ChangeEnvelope.Seq) >= 0 ? "change" : null;
    }

    /// <summary>"offset", "change", or null when rows are placed by batch position and index.</summary>
    public string? Kind { get; }

    public string Of(int row) => _offset?[row] is { } o
        ? (_index?[row] is { } i ? string.Create(CultureInfo.InvariantCulture, $"{o}.{i}") : o.ToString(CultureInfo.InvariantCulture))
        : string.Create(CultureInfo.InvariantCulture, $"{_position}#{row}");

    private static long?[]? Integers(ColumnBatch table, string name) =>
        table.Schema.IndexOf(name) is var at and >= 0 && table.Schema.Fields[at].Type == FieldType.Integer ? table.Column<long>(at) : null;
}
