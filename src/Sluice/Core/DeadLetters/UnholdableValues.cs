using System.Globalization;
using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Core.DeadLetters;

/// <summary>
/// Rows a sink cannot store as they are (a NaN for a DECIMAL column, an <c>infinity</c> for a ClickHouse DateTime) go
/// to the dead-letter store with the table, the row's key, the column and why, before the sink writes the rest:
/// a value is never stored as NULL, or as something else, in its place.
/// </summary>
public static class UnholdableValues
{
    /// <summary>
    /// Per column, what makes a row's value unholdable (a reason) or null when it can be held; a null check means the
    /// column holds every value. Returns the rows to write: <paramref name="table"/> itself when none was refused.
    /// </summary>
    /// <param name="key">The columns that name a row for a person reading the letter (a sink's key); the position columns (<c>_lsn</c>, <c>_offset</c>) are added.</param>
    public static ColumnBatch Refuse(ColumnBatch table, IReadOnlyList<Func<int, string?>?> checks, IReadOnlyList<string> key, DeadLetterStore letters, string sink)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(checks);
        ArgumentNullException.ThrowIfNull(letters);
        if (checks.All(c => c is null)) { return table; }
        var named = key.Concat(["_lsn", "_offset"]).Select(table.Schema.IndexOf).Where(i => i >= 0).Distinct().ToList();
        List<int>? keep = null;
        for (var row = 0; row < table.Count; row++)
        {
            var refused = false;
            for (var c = 0; c < checks.Count && !refused; c++)
            {
                if (checks[c]?.Invoke(row) is not { } why) { continue; }
                refused = true;
                var field = table.Schema.Fields[c].Name;
                var rowKey = string.Join(", ", named.Select(i => $"{table.Schema.Fields[i].Name}={Text(table, i, row)}"));
                var payload = RowJson.ToUtf8(table, row);
                // The row's content names it too: rows of one transaction share their position, and a sink may know no key.
                letters.Add(sink, $"{table.Schema.Table} row {rowKey}", $"{table.Schema.Table}.{field}: {Text(table, c, row)} cannot be stored by {sink}: {why}",
                    Encoding.UTF8.GetString(payload), $"{sink}:{table.Schema.Table}:{rowKey}:{field}:{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(payload))}");
            }

            if (refused) { keep ??= Enumerable.Range(0, row).ToList(); }
            else { keep?.Add(row); }
        }

        return keep is null ? table : table.Gather(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(keep));
    }

    /// <summary>A value as a letter shows it: its verbatim text, else the value in invariant form.</summary>
    public static string Text(ColumnBatch table, int column, int row)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Verbatim(column)?[row] is { } verbatim) { return verbatim; }
        return table.Value(column, row) switch
        {
            null => "NULL",
            DateTime t => RowJson.Timestamp(t),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            var other => other.ToString() ?? "",
        };
    }
}
