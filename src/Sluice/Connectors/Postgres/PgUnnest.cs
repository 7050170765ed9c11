using Npgsql;
using NpgsqlTypes;
using Sluice.Core.Schema;
using static Sluice.Connectors.Postgres.PostgresSink;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// A batch's rows as one array parameter per column, read back by <c>unnest(...)</c> in the statement that uses them:
/// the rows travel with that statement, in its round trip. A staging table instead took three more (create it, start
/// the COPY, finish it) and a fourth to drop it, each a wake-up of a pool thread; at a few dozen rows per batch those
/// were most of the sink's cost.
/// </summary>
internal static class PgUnnest
{
    /// <summary>
    /// Adds <paramref name="rows"/>' columns to <paramref name="command"/>'s parameters and returns the <c>FROM</c> item
    /// (<c>unnest(...) AS alias(columns)</c>) and, per column, the expression that reads it as its target type.
    /// </summary>
    public static (string From, IReadOnlyList<string> Read) Rows(NpgsqlBatchCommand command, ColumnBatch rows, string alias)
    {
        var fields = rows.Schema.Fields;
        var arguments = new List<string>(fields.Count);
        var read = new List<string>(fields.Count);
        for (var c = 0; c < fields.Count; c++)
        {
            // Exact numbers, and dates and times .NET cannot hold (infinity, years after 9999, BC), go as Postgres's own
            // text and are cast by the server: nothing is rounded or lost on the way.
            var asText = fields[c].Type == FieldType.Decimal || rows.Verbatim(c) is not null;
            var (value, type) = asText && fields[c].Type != FieldType.Decimal ? (Text(rows, c), NpgsqlDbType.Text) : Values(rows.Columns[c], rows.Count);
            command.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = NpgsqlDbType.Array | type });
            arguments.Add($"${command.Parameters.Count}");
            var name = $"{alias}.{Quote(fields[c].Name)}";
            read.Add(asText ? $"{name}::{fields[c].PostgresType()}" : name);
        }

        return ($"unnest({string.Join(", ", arguments)}) AS {alias}({string.Join(", ", fields.Select(f => Quote(f.Name)))})", read);
    }

    /// <summary>The column's first <paramref name="count"/> values (its array may be longer) and their Postgres type.</summary>
    private static (Array Values, NpgsqlDbType Type) Values(Array column, int count) => column switch
    {
        string?[] s => (Slice(s, count), NpgsqlDbType.Text),
        long?[] l => (Slice(l, count), NpgsqlDbType.Bigint),
        double?[] d => (Slice(d, count), NpgsqlDbType.Double),
        bool?[] b => (Slice(b, count), NpgsqlDbType.Boolean),
        // Npgsql writes a timestamptz only from a UTC DateTime; the batch's are UTC by contract, whatever their Kind says.
        DateTime?[] t => (t.Take(count).Select(v => v is { } x ? DateTime.SpecifyKind(x, DateTimeKind.Utc) : (DateTime?)null).ToArray(), NpgsqlDbType.TimestampTz),
        DateOnly?[] o => (Slice(o, count), NpgsqlDbType.Date),
        _ => throw new InvalidOperationException($"unsupported column type {column.GetType().Name}"),
    };

    private static T[] Slice<T>(T[] values, int count) => values.Length == count ? values : values[..count];

    /// <summary>A date or time column as text: the verbatim text where there is one, else the value in Postgres's ISO form.</summary>
    private static string?[] Text(ColumnBatch rows, int column)
    {
        var verbatim = rows.Verbatim(column)!;
        var text = new string?[rows.Count];
        for (var row = 0; row < rows.Count; row++)
        {
            text[row] = verbatim[row] ?? rows.Columns[column].GetValue(row) switch
            {
                DateTime t => t.ToString("yyyy-MM-dd HH:mm:ss.ffffff'+00'", System.Globalization.CultureInfo.InvariantCulture),
                DateOnly d => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
                _ => null,
            };
        }

        return text;
    }
}
