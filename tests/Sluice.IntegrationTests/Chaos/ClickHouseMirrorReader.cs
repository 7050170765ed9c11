using System.Globalization;
using System.Text;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// Reads a ClickHouse mirror's <c>&lt;table&gt;_current</c> view back as the values Postgres holds, by the column map
/// of docs/CDC.md ("ClickHouse mirror columns") and nothing else: an Int64 of a timestamp column is microseconds since
/// 1970, an Int32 of a date column days, a UInt8 of a boolean column 0 or 1, a Decimal its digits with every scale digit.
/// A column stored any other way (a DateTime, which drops the microseconds) stays the text ClickHouse printed, which
/// equals no Postgres value: a loss shows as a difference, never as a match.
/// </summary>
internal static class ClickHouseMirrorReader
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public static string Database(string id) => $"mirror_{id}";

    public static async Task<List<string>> ReadAsync(string id, string table, string[] columns)
    {
        var exists = await QueryAsync($"EXISTS TABLE `{Database(id)}`.`{table}_current`");
        if (exists.Trim() != "1") { return []; }
        var sourceTypes = await SourceTypesAsync(id, table);
        var text = await QueryAsync($"SELECT {string.Join(", ", columns.Select(c => $"`{c}`"))} FROM `{Database(id)}`.`{table}_current` FORMAT TabSeparatedWithNamesAndTypes");
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var types = lines[1].Split('\t');
        return lines.Skip(2).Select(line => MirrorRows.Line(line.Split('\t').Select((v, i) => Value(v, types[i], sourceTypes[columns[i]])))).ToList();
    }

    /// <summary>One TabSeparated value, decoded by its ClickHouse type and its source column's Postgres type.</summary>
    private static object? Value(string text, string clickHouseType, string postgresType)
    {
        if (text == "\\N") { return null; }
        var value = Unescape(text);
        var type = clickHouseType.StartsWith("Nullable(", StringComparison.Ordinal) ? clickHouseType[9..^1] : clickHouseType;
        return (type, postgresType) switch
        {
            ("Int64", "timestamp with time zone" or "timestamp without time zone") => long.Parse(value, CultureInfo.InvariantCulture) switch
            {
                long.MaxValue => "infinity",
                long.MinValue => "-infinity",
                var micros => DateTime.UnixEpoch.AddTicks(micros * 10),
            },
            ("Int32", "date") => int.Parse(value, CultureInfo.InvariantCulture) switch
            {
                int.MaxValue => "infinity",
                int.MinValue => "-infinity",
                var days => DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + days),
            },
            ("UInt8", "boolean") => value switch { "0" => false, "1" => true, _ => value },
            ("Int64", "bigint" or "integer" or "smallint") => long.Parse(value, CultureInfo.InvariantCulture),
            ("Float64", "double precision" or "real") => double.Parse(value, CultureInfo.InvariantCulture),
            (_, "numeric") when type.StartsWith("Decimal(", StringComparison.Ordinal) => decimal.Parse(value, CultureInfo.InvariantCulture),
            _ => value,
        };
    }

    /// <summary>TabSeparated escapes backslash, tab, newline (and a few more) with a backslash.</summary>
    private static string Unescape(string text)
    {
        if (!text.Contains('\\', StringComparison.Ordinal)) { return text; }
        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\' || i + 1 == text.Length) { result.Append(text[i]); continue; }
            result.Append(text[++i] switch { 't' => '\t', 'n' => '\n', 'r' => '\r', '0' => '\0', 'b' => '\b', 'f' => '\f', var c => c });
        }

        return result.ToString();
    }

    /// <summary>The Postgres type of each column of the source table (the workload's own database).</summary>
    private static async Task<Dictionary<string, string>> SourceTypesAsync(string id, string table)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionOptions.FromEnvironment().WithDatabase($"sluice_mirror_{id}").ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = @t", connection);
        command.Parameters.AddWithValue("t", table);
        await using var reader = await command.ExecuteReaderAsync();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync()) { types[reader.GetString(0)] = reader.GetString(1); }
        return types;
    }

    public static async Task<string> QueryAsync(string sql)
    {
        using var content = new StringContent(sql);
        using var response = await Http.PostAsync(ServerSettings.ClickHouseUrl, content);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) { throw new InvalidOperationException($"ClickHouse: {body}"); }
        return body;
    }
}
