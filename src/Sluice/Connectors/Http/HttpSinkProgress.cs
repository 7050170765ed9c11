using System.Globalization;
using Sluice.Core.Metadata;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Http;

/// <summary>
/// How far an <c>http</c> sink has delivered, row by row, beside the pipeline's checkpoint (<c>&lt;key&gt;:rows</c>):
/// the last request's last row as its source position (the <c>_offset</c> of the http source's landing log) and its
/// place among the rows of that position (the rows of one event share it). An API's idempotency key is the hash of a
/// request's rows, so after a crash a replay cut into other batches makes other requests, which the API would take
/// again; with this record the rows already delivered are not sent. A table without positions is sent whole, as before.
/// </summary>
internal sealed class HttpSinkProgress(CheckpointStore checkpoints)
{
    /// <summary>The rows of <paramref name="table"/> not yet delivered, and the tracker to record each request (null: the table has no positions).</summary>
    public (ColumnBatch Rows, Tracker? Progress) Undelivered(ColumnBatch table, string checkpointKey)
    {
        // Only the landing log's _offset rises with every row of a pipeline. A change stream's _seq does not order the
        // rows this sink sees (snapshot rows, backfills and re-snapshots carry their own), so recording it skipped rows
        // that were never sent; change streams keep relying on the API's idempotency key.
        var column = table.Schema.IndexOf("_offset");
        if (column < 0 || table.Schema.Fields[column].Type != FieldType.Integer) { return (table, null); }
        var positions = table.Column<long>(column);
        var places = new (long Position, int Place)[table.Count];
        for (var row = 0; row < table.Count; row++)
        {
            var position = positions[row] ?? long.MinValue;
            places[row] = (position, row > 0 && places[row - 1].Position == position ? places[row - 1].Place + 1 : 0);
        }

        var key = checkpointKey + ":rows";
        var done = Parse(checkpoints.Get(key));
        var keep = Enumerable.Range(0, table.Count).Where(r => done is not { } d || places[r].CompareTo(d) > 0).ToArray();
        var rows = keep.Length == table.Count ? table : table.Gather(keep);
        return (rows, new Tracker(checkpoints, key, keep.Select(r => places[r]).ToArray()));
    }

    private static (long, int)? Parse(string? value)
    {
        if (value?.Split(':') is not [var position, var place]) { return null; }
        return (long.Parse(position, CultureInfo.InvariantCulture), int.Parse(place, CultureInfo.InvariantCulture));
    }

    /// <summary>Records, after each request, the place of its last row.</summary>
    internal sealed class Tracker(CheckpointStore checkpoints, string key, (long Position, int Place)[] places)
    {
        public void Delivered(int lastRow) =>
            checkpoints.Set(key, string.Create(CultureInfo.InvariantCulture, $"{places[lastRow].Position}:{places[lastRow].Place}"));
    }
}
