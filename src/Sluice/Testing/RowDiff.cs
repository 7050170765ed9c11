using System.Text;

namespace Sluice.Testing;

/// <summary>A row the output has that was not expected, or an expected row it does not have.</summary>
public sealed record RowChange(int? Line, IReadOnlyDictionary<string, object?> Cells);

/// <summary>An expected row whose identity (its key, or most of its cells) is there with other values in some columns.</summary>
public sealed record ChangedRow(int Line, IReadOnlyDictionary<string, string?> Expected, IReadOnlyDictionary<string, object?> Actual, IReadOnlyList<string> Columns);

/// <summary>
/// Expected against actual rows as multisets over the compared columns (order never matters, duplicates count).
/// Rows left over on both sides are paired, by the key when one is given, else by the most cells in common, and shown
/// as changed cells with their column names; the rest are missing or unexpected rows.
/// </summary>
public sealed record RowDiff(IReadOnlyList<ChangedRow> Changed, IReadOnlyList<RowChange> Missing, IReadOnlyList<RowChange> Unexpected)
{
    /// <summary>At most this many rows of each kind are printed: a wholly wrong table would otherwise flood the terminal.</summary>
    private const int Shown = 20;

    public bool Passed => Changed.Count == 0 && Missing.Count == 0 && Unexpected.Count == 0;

    public static RowDiff Compare(ExpectedTable expected, IReadOnlyList<string> columns, IReadOnlyList<object?[]> actual, IReadOnlyList<string> key)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(actual);
        string Canon(Func<string, object?> cell) => string.Join("\u0001", columns.Select(c => CellText.Canonical(cell(c))));
        var waiting = new Dictionary<string, Queue<ExpectedRow>>(StringComparer.Ordinal);
        foreach (var row in expected.Rows)
        {
            var k = Canon(c => row.Cells[c]);
            if (!waiting.TryGetValue(k, out var q)) { waiting[k] = q = new Queue<ExpectedRow>(); }
            q.Enqueue(row);
        }

        var unexpected = new List<IReadOnlyDictionary<string, object?>>();
        foreach (var values in actual)
        {
            var cells = columns.Select((c, i) => (c, values[i])).ToDictionary(p => p.c, p => p.Item2, StringComparer.Ordinal);
            var k = Canon(c => cells[c]);
            if (waiting.TryGetValue(k, out var q) && q.Count > 0) { q.Dequeue(); }
            else { unexpected.Add(cells); }
        }

        var missing = waiting.Values.SelectMany(q => q).OrderBy(r => r.Line).ToList();
        var changed = new List<ChangedRow>();
        foreach (var row in missing.ToList())
        {
            var best = -1;
            var bestSame = 0;
            for (var i = 0; i < unexpected.Count; i++)
            {
                var candidate = unexpected[i];
                if (key.Count > 0)
                {
                    if (key.All(c => CellText.Canonical(row.Cells[c]) == CellText.Canonical(candidate[c]))) { best = i; break; }
                    continue;
                }

                var same = columns.Count(c => CellText.Canonical(row.Cells[c]) == CellText.Canonical(candidate[c]));
                if (same > bestSame) { best = i; bestSame = same; }
            }

            // Without a key, a pair shares at least half its cells: otherwise they are two unrelated rows.
            if (best < 0 || (key.Count == 0 && bestSame * 2 < columns.Count)) { continue; }
            var match = unexpected[best];
            unexpected.RemoveAt(best);
            missing.Remove(row);
            changed.Add(new ChangedRow(row.Line, row.Cells, match, columns.Where(c => CellText.Canonical(row.Cells[c]) != CellText.Canonical(match[c])).ToList()));
        }

        return new RowDiff(
            changed,
            missing.Select(r => new RowChange(r.Line, r.Cells.ToDictionary(p => p.Key, p => (object?)p.Value, StringComparer.Ordinal))).ToList(),
            unexpected.Select(u => new RowChange(null, u)).ToList());
    }

    /// <summary>The diff as the command prints it: a summary line, then changed cells, missing rows and unexpected rows.</summary>
    public string Describe(string file, IReadOnlyList<string> key, string indent)
    {
        var text = new StringBuilder();
        text.Append(indent).Append(Changed.Count).Append(" changed, ").Append(Missing.Count).Append(" missing, ").Append(Unexpected.Count).AppendLine(" unexpected row(s)");
        foreach (var c in Changed.Take(Shown))
        {
            var id = key.Count > 0 ? $" ({Cells(key.ToDictionary(k => k, k => (object?)c.Expected[k]))})" : "";
            var cells = string.Join("; ", c.Columns.Select(col => $"{col} expected {CellText.Show(c.Expected[col])}, actual {CellText.Show(c.Actual[col])}"));
            text.Append(indent).Append("changed ").Append(file).Append(':').Append(c.Line).Append(id).Append(": ").AppendLine(cells);
        }

        foreach (var m in Missing.Take(Shown)) { text.Append(indent).Append("missing ").Append(file).Append(':').Append(m.Line).Append(": ").AppendLine(Cells(m.Cells)); }
        foreach (var u in Unexpected.Take(Shown)) { text.Append(indent).Append("unexpected: ").AppendLine(Cells(u.Cells)); }
        var more = Math.Max(0, Changed.Count - Shown) + Math.Max(0, Missing.Count - Shown) + Math.Max(0, Unexpected.Count - Shown);
        if (more > 0) { text.Append(indent).Append("... and ").Append(more).AppendLine(" more"); }
        return text.ToString();
    }

    private static string Cells(IReadOnlyDictionary<string, object?> cells) => string.Join(", ", cells.Select(p => $"{p.Key}={CellText.Show(p.Value)}"));
}
