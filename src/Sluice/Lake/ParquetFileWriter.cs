using Parquet;
using Parquet.Schema;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// One Parquet file being written, a row group per <see cref="WriteRowGroupAsync"/> call. Timestamps are written as
/// UTC-adjusted milliseconds, so DuckDB reads them as <c>TIMESTAMP WITH TIME ZONE</c>.
/// </summary>
internal sealed class ParquetFileWriter : IAsyncDisposable
{
    private readonly FileStream _stream;
    private readonly ParquetWriter _writer;
    private readonly ParquetSchema _schema;
    private readonly IReadOnlyList<FieldSpec> _fields;
    private bool _completed;

    private ParquetFileWriter(string path, FileStream stream, ParquetWriter writer, ParquetSchema schema, IReadOnlyList<FieldSpec> fields)
    {
        Path = path;
        _stream = stream;
        _writer = writer;
        _schema = schema;
        _fields = fields;
    }

    public string Path { get; }

    public long Rows { get; private set; }

    public static async Task<ParquetFileWriter> CreateAsync(string path, IReadOnlyList<FieldSpec> fields, CancellationToken ct)
    {
        var schema = new ParquetSchema(fields.Select(ToField).ToArray());
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        try
        {
            var writer = await ParquetWriter.CreateAsync(schema, stream, new ParquetOptions(), false, ct).ConfigureAwait(false);
            return new ParquetFileWriter(path, stream, writer, schema, fields);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Writes a whole file in one call.</summary>
    public static async Task WriteAsync(string path, IReadOnlyList<FieldSpec> fields, IReadOnlyList<Array> columns, CancellationToken ct)
    {
        var writer = await CreateAsync(path, fields, ct).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            await writer.WriteRowGroupAsync(columns, columns.Count == 0 ? 0 : columns[0].Length, ct).ConfigureAwait(false);
            await writer.CompleteAsync(ct).ConfigureAwait(false);
        }
    }

    public async Task WriteRowGroupAsync(IReadOnlyList<Array> columns, int rows, CancellationToken ct)
    {
        if (rows == 0)
        {
            return;
        }

        using var group = _writer.CreateRowGroup();
        for (var i = 0; i < _fields.Count; i++)
        {
            var field = _schema.DataFields[i];
            var task = columns[i] switch
            {
                string?[] s => group.WriteAsync(field, s!, null),
                long?[] l => group.WriteAsync<long>(field, l, null, null, ct),
                double?[] d => group.WriteAsync<double>(field, d, null, null, ct),
                bool?[] b => group.WriteAsync<bool>(field, b, null, null, ct),
                DateTime?[] t => group.WriteAsync<DateTime>(field, t, null, null, ct),
                DateOnly?[] d => group.WriteAsync<DateOnly>(field, d, null, null, ct),
                _ => throw new InvalidOperationException($"Column '{_fields[i].Name}' has an unsupported array type {columns[i].GetType().Name}."),
            };
            await task.ConfigureAwait(false);
        }

        Rows += rows;
    }

    /// <summary>Writes the footer and forces the file to disk: the manifest may name it only once it is durable.</summary>
    public async Task CompleteAsync(CancellationToken ct)
    {
        _completed = true;
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _stream.FlushAsync(ct).ConfigureAwait(false);
        _stream.Flush(flushToDisk: true);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_completed)
        {
            // CompleteAsync already wrote the footer and closed the file; a second footer would go to a closed stream.
            return;
        }

        _completed = true;
        await _writer.DisposeAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private static DataField ToField(FieldSpec f) => f.Type switch
    {
        FieldType.String => new DataField<string>(f.Name),
        FieldType.Integer => new DataField<long?>(f.Name),
        FieldType.Double => new DataField<double?>(f.Name),
        FieldType.Boolean => new DataField<bool?>(f.Name),
        // Milliseconds, not microseconds: Parquet.Net 6.1 writes the min/max statistics of micros columns in millis, so
        // DuckDB's row-group pruning drops every row of "WHERE t >= ..." filters. Millis statistics are right.
        FieldType.Timestamp => new DateTimeDataField(f.Name, DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Millis, isNullable: true),
        FieldType.Date => new DataField<DateOnly?>(f.Name),
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    /// <summary>Picks the rows at <paramref name="rows"/> out of a column.</summary>
    public static Array Gather(Array column, ReadOnlySpan<int> rows)
    {
        switch (column)
        {
            case string?[] s: return GatherTyped(s, rows);
            case DateTime?[] t: return GatherTyped(t, rows);
            case long?[] l: return GatherTyped(l, rows);
            case double?[] d: return GatherTyped(d, rows);
            case bool?[] b: return GatherTyped(b, rows);
            case DateOnly?[] d: return GatherTyped(d, rows);
            default:
                var result = Array.CreateInstance(column.GetType().GetElementType()!, rows.Length);
                for (var i = 0; i < rows.Length; i++) { result.SetValue(column.GetValue(rows[i]), i); }
                return result;
        }
    }

    private static T[] GatherTyped<T>(T[] source, ReadOnlySpan<int> rows)
    {
        var result = new T[rows.Length];
        for (var i = 0; i < rows.Length; i++) { result[i] = source[rows[i]]; }
        return result;
    }
}
