using System.Text;
using System.Text.Json;

namespace Sluice.Testing;

/// <summary>One expected row: its cells by column (null is NULL) and the line of the file it starts on.</summary>
public sealed record ExpectedRow(int Line, IReadOnlyDictionary<string, string?> Cells);

/// <summary>The expected rows of one output: the columns the file names, and its rows.</summary>
public sealed record ExpectedTable(string File, IReadOnlyList<string> Columns, IReadOnlyList<ExpectedRow> Rows);

/// <summary>
/// Reads expected rows from CSV (a header, then RFC 4180 rows: quotes around cells holding commas, quotes or line
/// breaks, <c>""</c> for a quote; an empty cell is NULL) or JSONL (one object per line). A malformed line is a
/// <see cref="FixtureException"/> naming the file and line.
/// </summary>
public static class ExpectedRows
{
    public static bool IsKnownFormat(string path) =>
        path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);

    public static ExpectedTable Read(string path)
    {
        var display = TestCase.Display(path);
        return path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? ReadCsv(display, File.ReadAllText(path)) : ReadJsonl(display, File.ReadAllLines(path));
    }

    public static ExpectedTable ReadCsv(string display, string text)
    {
        var records = CsvRecords(display, text).ToList();
        if (records.Count == 0 || records[0].Cells.All(c => c.Length == 0))
        {
            throw new FixtureException(display, 1, "expected a header line naming the columns to compare");
        }

        var header = records[0].Cells.Select(c => c.Trim()).ToList();
        var duplicate = header.GroupBy(h => h, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1 || g.Key.Length == 0);
        if (duplicate is not null)
        {
            throw new FixtureException(display, records[0].Line, duplicate.Key.Length == 0 ? "the header has an empty column name" : $"the header names column '{duplicate.Key}' twice");
        }

        var rows = new List<ExpectedRow>();
        foreach (var (line, cells) in records.Skip(1))
        {
            if (cells is [""]) { continue; } // a blank line
            if (cells.Count != header.Count)
            {
                throw new FixtureException(display, line, $"{cells.Count} cell(s), but the header has {header.Count} ({string.Join(",", header)})");
            }

            rows.Add(new ExpectedRow(line, header.Zip(cells).ToDictionary(p => p.First, p => p.Second.Length == 0 ? null : p.Second, StringComparer.Ordinal)));
        }

        return new ExpectedTable(display, header, rows);
    }

    /// <summary>RFC 4180 records with the line each starts on; a quote left open at the end is an error at the line it opened.</summary>
    private static IEnumerable<(int Line, List<string> Cells)> CsvRecords(string display, string text)
    {
        var line = 1;
        var i = 0;
        while (i < text.Length)
        {
            var start = line;
            var cells = new List<string>();
            var cell = new StringBuilder();
            var quotedCell = false;
            while (true)
            {
                if (i >= text.Length) { cells.Add(cell.ToString()); break; }
                var c = text[i];
                if (c == '"' && cell.Length == 0 && !quotedCell)
                {
                    quotedCell = true;
                    var opened = line;
                    i++;
                    while (true)
                    {
                        if (i >= text.Length) { throw new FixtureException(display, opened, "a quoted cell is never closed (a \" is missing)"); }
                        if (text[i] == '"')
                        {
                            if (i + 1 < text.Length && text[i + 1] == '"') { cell.Append('"'); i += 2; continue; }
                            i++;
                            break;
                        }

                        if (text[i] == '\n') { line++; }
                        cell.Append(text[i]);
                        i++;
                    }

                    if (i < text.Length && text[i] is not (',' or '\n' or '\r'))
                    {
                        throw new FixtureException(display, line, $"text after the closing quote of cell {cells.Count + 1} (quote the whole cell, and double a quote inside it)");
                    }

                    continue;
                }

                if (c == ',') { cells.Add(cell.ToString()); cell.Clear(); quotedCell = false; i++; continue; }
                if (c is '\r' or '\n')
                {
                    cells.Add(cell.ToString());
                    if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') { i++; }
                    i++;
                    line++;
                    break;
                }

                if (c == '"' && !quotedCell) { throw new FixtureException(display, line, $"a quote inside unquoted cell {cells.Count + 1} (quote the whole cell, and double the quote)"); }
                cell.Append(c);
                i++;
            }

            yield return (start, cells);
        }
    }

    public static ExpectedTable ReadJsonl(string display, IReadOnlyList<string> lines)
    {
        var columns = new List<string>();
        var rows = new List<ExpectedRow>();
        for (var n = 0; n < lines.Count; n++)
        {
            if (lines[n].Trim().Length == 0) { continue; }
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(lines[n]);
            }
            catch (JsonException e)
            {
                throw new FixtureException(display, n + 1, $"not JSON: {e.Message}");
            }

            using (document)
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new FixtureException(display, n + 1, $"expected a JSON object (one row), found {document.RootElement.ValueKind.ToString().ToLowerInvariant()}");
                }

                var cells = new Dictionary<string, string?>(StringComparer.Ordinal);
                foreach (var p in document.RootElement.EnumerateObject())
                {
                    if (!columns.Contains(p.Name)) { columns.Add(p.Name); }
                    cells[p.Name] = p.Value.ValueKind switch
                    {
                        JsonValueKind.Null => null,
                        JsonValueKind.String => p.Value.GetString(),
                        _ => p.Value.GetRawText(),
                    };
                }

                rows.Add(new ExpectedRow(n + 1, cells));
            }
        }

        // A key a row leaves out is NULL there: every row is compared on every column the file names.
        var filled = rows.Select(r => r with { Cells = columns.ToDictionary(c => c, c => r.Cells.GetValueOrDefault(c), StringComparer.Ordinal) }).ToList();
        return new ExpectedTable(display, columns, filled);
    }
}
