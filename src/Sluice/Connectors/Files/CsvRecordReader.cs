using System.Globalization;
using System.Text;
using System.Text.Json;
using Sluice.Core.Schema;
using Sluice.Core.Text;
using Sylvan.Data.Csv;

namespace Sluice.Connectors.Files;

/// <summary>
/// Delimited text with a header line. Columns are matched to fields by name (case-insensitive, any order, extra
/// columns ignored); a missing required column fails the file and names the expected header. An empty cell is a
/// missing value. Numbers and dates are read in the invariant culture.
/// </summary>
internal sealed class CsvRecordReader : IRecordFileReader
{
    public async Task ReadAsync(Stream stream, IngestRun run, Func<ColumnBatch, CancellationToken, ValueTask> emit, CancellationToken ct)
    {
        var strict = run.Type.InvalidText == InvalidTextPolicy.Fail;
        using var text = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: strict), detectEncodingFromByteOrderMarks: true, 1 << 16, leaveOpen: true);
        CsvDataReader csv;
        try
        {
            csv = await CsvDataReader.CreateAsync(text, new CsvDataReaderOptions { HasHeaders = true, Delimiter = run.Type.Delimiter, BufferSize = 1 << 16, MaxBufferSize = ChunkedRecordReader.MaxRecordBytes }, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CsvFormatException or DecoderFallbackException)
        {
            run.Fail(1, 0, $"unreadable CSV header: {e.Message}");
            return;
        }

        await using (csv.ConfigureAwait(false))
        {
            var fields = run.Shape.Fields;
            var columnOf = new int[fields.Count];
            var headers = Enumerable.Range(0, csv.FieldCount).Select(csv.GetName).ToList();
            if (run.Type.Header == HeaderMatch.Exact && HeaderProblem(headers, run.Shape.Reads.Select((r, i) => fields[i] with { Name = r.Source }).ToList(), run.Type.Delimiter) is { } headerProblem)
            {
                run.Fail(1, 0, $"{run.FileName}: {headerProblem}");
                return;
            }

            var missing = new List<string>();
            for (var i = 0; i < fields.Count; i++)
            {
                var source = run.Shape.Reads[i].Source;
                columnOf[i] = headers.FindIndex(h => string.Equals(h.Trim(), source, StringComparison.OrdinalIgnoreCase));
                if (columnOf[i] < 0 && fields[i].Required) { missing.Add(source); }
            }

            if (missing.Count > 0)
            {
                run.Fail(1, 0, $"header is missing {string.Join(", ", missing)}: expected a header with {string.Join(run.Type.Delimiter, run.Shape.Reads.Select(r => r.Source))}, found '{string.Join(run.Type.Delimiter, headers)}'");
                return;
            }

            try
            {
                while (await csv.ReadAsync(ct).ConfigureAwait(false))
                {
                    var record = run.NextRecord();
                    var problem = ReadRow(csv, run.Shape, columnOf, run.Builder);
                    // Sylvan numbers data rows from 1; the header is line 1, so a row's line is one more (exact unless a quoted cell spans lines).
                    run.Accept(problem, record, csv.RowNumber + 1, problem is null ? "" : RawRow(csv, headers));
                    if (run.StopReading) { return; }
                    if (run.BatchFull) { await emit(run.Flush(), ct).ConfigureAwait(false); }
                }
            }
            catch (Exception e) when (e is CsvFormatException or DecoderFallbackException)
            {
                run.Fail(csv.RowNumber + 1, run.Records + 1, $"unreadable CSV at line {csv.RowNumber + 1}: {e.Message}");
                return;
            }

            if (run.Builder.Count > 0)
            {
                await emit(run.Flush(), ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Why a header is not exactly the declared fields in order (names compared without case), or null when it is.</summary>
    internal static string? HeaderProblem(IReadOnlyList<string> headers, IReadOnlyList<FieldSpec> fields, char delimiter)
    {
        var expected = string.Join(delimiter, fields.Select(f => f.Name));
        var found = string.Join(delimiter, headers);
        if (headers.Count == fields.Count && headers.Select((h, i) => string.Equals(h.Trim(), fields[i].Name, StringComparison.OrdinalIgnoreCase)).All(x => x))
        {
            return null;
        }

        var shown = TextClip.Clip(found, 200);
        if (!headers.Any(h => fields.Any(f => string.Equals(h.Trim(), f.Name, StringComparison.OrdinalIgnoreCase))))
        {
            return $"the header line is missing: expected the header '{expected}' on line 1, found '{shown}'";
        }

        var sameNames = headers.Count == fields.Count && fields.All(f => headers.Any(h => string.Equals(h.Trim(), f.Name, StringComparison.OrdinalIgnoreCase)));
        return sameNames
            ? $"the columns are reordered: expected the header '{expected}' (in this order), found '{shown}'"
            : $"the header does not match: expected '{expected}', found '{shown}'";
    }

    /// <summary>Parses a dead letter's payload (the raw cells as a JSON object of header to text) as one row.</summary>
    public static FieldProblem? ParseCells(string json, RecordShape shape, ColumnBatchBuilder row)
    {
        Dictionary<string, string>? cells;
        try
        {
            cells = JsonSerializer.Deserialize<Dictionary<string, string>>(json);
        }
        catch (JsonException e)
        {
            return new FieldProblem(null, $"payload is not a JSON object of cells: {e.Message}");
        }

        var byName = new Dictionary<string, string>(cells ?? [], StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < shape.Fields.Count; i++)
        {
            var spec = shape.Fields[i] with { Name = shape.Reads[i].Source };
            var cell = byName.GetValueOrDefault(spec.Name) ?? "";
            if (cell.Length == 0)
            {
                if (spec.Required) { row.AbortRow(); return new FieldProblem(spec.Name, "missing required field"); }
                continue;
            }

            var problem = Set(spec, shape.Reads[i], cell, row[i]);
            if (problem is not null) { row.AbortRow(); return problem; }
        }

        row.CommitRow();
        return null;
    }

    private static FieldProblem? ReadRow(CsvDataReader csv, RecordShape shape, int[] columnOf, ColumnBatchBuilder row)
    {
        for (var i = 0; i < shape.Fields.Count; i++)
        {
            // Problems name the field as the file does.
            var spec = shape.Fields[i] with { Name = shape.Reads[i].Source };
            var col = columnOf[i];
            var cell = col < 0 || col >= csv.RowFieldCount ? "" : csv.GetString(col);
            if (cell.Length == 0)
            {
                if (spec.Required) { row.AbortRow(); return new FieldProblem(spec.Name, "missing required field"); }
                continue;
            }

            var problem = Set(spec, shape.Reads[i], cell, row[i]);
            if (problem is not null)
            {
                row.AbortRow();
                return problem;
            }
        }

        row.CommitRow();
        return null;
    }

    private static FieldProblem? Set(FieldSpec spec, FieldRead read, string cell, ColumnBuilder column)
    {
        switch (spec.Type)
        {
            case FieldType.String:
                ((TypedColumnBuilder<string>)column).Set(cell);
                return null;
            case FieldType.Integer when long.TryParse(cell, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l):
                ((ValueColumnBuilder<long>)column).Set(l);
                return null;
            case FieldType.Double when double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var d):
                // Text out of a double's range parses to infinity, and "NaN" and "Infinity" parse too: none is stored.
                if (!double.IsFinite(d)) { return new FieldProblem(spec.Name, JsonValues.OutOfDoubleRange($"'{TextClip.Clip(cell, 60)}'")); }
                ((ValueColumnBuilder<double>)column).Set(d);
                return null;
            case FieldType.Boolean when bool.TryParse(cell, out var b):
                ((ValueColumnBuilder<bool>)column).Set(b);
                return null;
            case FieldType.Timestamp when read.TryParseTimestamp(cell.AsSpan(), out var t):
                ((ValueColumnBuilder<DateTime>)column).Set(t);
                return null;
            case FieldType.Date when read.TryParseDate(cell.AsSpan(), out var date):
                ((ValueColumnBuilder<DateOnly>)column).Set(date);
                return null;
            default:
                var shown = TextClip.Clip(cell, 60);
                return new FieldProblem(spec.Name, spec.Type == FieldType.Timestamp || (spec.Type == FieldType.Date && read.Format is not null)
                    ? $"unparsable {spec.Type.Name()} '{shown}' (expected {read.Expected(spec.Type)})"
                    : $"wrong type: expected {spec.Type.Name()}, got '{shown}'");
        }
    }

    private static string RawRow(CsvDataReader csv, List<string> headers)
    {
        var row = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < csv.RowFieldCount; i++)
        {
            row[i < headers.Count ? headers[i] : $"column{i + 1}"] = csv.GetString(i);
        }

        return JsonSerializer.Serialize(row);
    }
}
