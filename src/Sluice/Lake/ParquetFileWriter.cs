using Parquet;
using Parquet.Schema;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>Writes columns to one Parquet file (Snappy, one row group per call of <see cref="WriteAsync"/>).</summary>
internal static class ParquetFileWriter
{
    public static async Task WriteAsync(string path, IReadOnlyList<FieldSpec> fields, IReadOnlyList<Array> columns, CancellationToken ct)
    {
        var schema = new ParquetSchema(fields.Select(ToField).ToArray());
        var fileStream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        await using (fileStream.ConfigureAwait(false))
        {
            var writer = await ParquetWriter.CreateAsync(schema, fileStream, new ParquetOptions(), false, ct).ConfigureAwait(false);
            await using (writer.ConfigureAwait(false))
            {
                using var group = writer.CreateRowGroup();
                for (var i = 0; i < fields.Count; i++)
                {
                    var field = schema.DataFields[i];
                    var task = columns[i] switch
                    {
                        string?[] s => group.WriteAsync(field, s!, null),
                        long?[] l => group.WriteAsync<long>(field, l, null, null, ct),
                        double?[] d => group.WriteAsync<double>(field, d, null, null, ct),
                        bool?[] b => group.WriteAsync<bool>(field, b, null, null, ct),
                        DateTime?[] t => group.WriteAsync<DateTime>(field, t, null, null, ct),
                        DateOnly?[] d => group.WriteAsync<DateOnly>(field, d, null, null, ct),
                        _ => throw new InvalidOperationException($"Column '{fields[i].Name}' has an unsupported array type {columns[i].GetType().Name}."),
                    };
                    await task.ConfigureAwait(false);
                }
            }

            // The file must be on disk before the manifest names it, or a crash could publish a torn file.
            await fileStream.FlushAsync(ct).ConfigureAwait(false);
            fileStream.Flush(flushToDisk: true);
        }
    }

    private static DataField ToField(FieldSpec f) => f.Type switch
    {
        FieldType.String => new DataField<string>(f.Name),
        FieldType.Integer => new DataField<long?>(f.Name),
        FieldType.Double => new DataField<double?>(f.Name),
        FieldType.Boolean => new DataField<bool?>(f.Name),
        FieldType.Timestamp => new DataField<DateTime?>(f.Name),
        FieldType.Date => new DataField<DateOnly?>(f.Name),
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    /// <summary>Picks the rows at <paramref name="rows"/> out of a column.</summary>
    public static Array Gather(Array column, int[] rows)
    {
        var result = Array.CreateInstance(column.GetType().GetElementType()!, rows.Length);
        switch (column)
        {
            case string?[] s:
                var rs = (string?[])result;
                for (var i = 0; i < rows.Length; i++) { rs[i] = s[rows[i]]; }
                break;
            case DateTime?[] t:
                var rt = (DateTime?[])result;
                for (var i = 0; i < rows.Length; i++) { rt[i] = t[rows[i]]; }
                break;
            default:
                for (var i = 0; i < rows.Length; i++) { result.SetValue(column.GetValue(rows[i]), i); }
                break;
        }

        return result;
    }
}
