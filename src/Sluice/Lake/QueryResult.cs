using System.Data.Common;

namespace Sluice.Lake;

public sealed record QueryResult(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows)
{
    /// <summary>True when the result had more rows than were read: <see cref="Rows"/> is its beginning only.</summary>
    public bool Truncated { get; init; }

    /// <summary>Reads at most <paramref name="maxRows"/> rows of an open reader, NULL as null, and whether there were more.</summary>
    public static QueryResult Read(DbDataReader reader, int maxRows)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToList();
        var rows = new List<object?[]>();
        while (rows.Count < maxRows && reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        // One row more is looked at (not kept), so a cut is known and said rather than passed off as the whole result.
        return new QueryResult(columns, rows) { Truncated = rows.Count == maxRows && reader.Read() };
    }
}
