using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Core.Recipes;
using Sluice.Lake;
using static Sluice.Lake.LakeQueryEngine;

using Sluice.Connectors.Http.Ingest;

namespace Sluice.Serving.Query;

public enum MetricsGrouping
{
    EventType,
    Hour,
    Day,
}

/// <summary>
/// The metrics SQL over a lake table, with DuckDB. Only partitions (days) inside the range are read. The tenant, the
/// range and nothing else from the request reach the SQL, and only as parameters; column names and the revenue
/// expression come from the recipe.
/// </summary>
public sealed class MetricsQuery(MetricsApiOptions options, IEngineServices services)
{
    public static bool TryParseGrouping(string text, out MetricsGrouping grouping)
    {
        switch (text)
        {
            case "event_type": grouping = MetricsGrouping.EventType; return true;
            case "hour": grouping = MetricsGrouping.Hour; return true;
            case "day": grouping = MetricsGrouping.Day; return true;
            default: grouping = default; return false;
        }
    }

    public IReadOnlyList<MetricsRow> Run(string tenant, DateTime from, DateTime to, MetricsGrouping grouping)
    {
        var table = services.Lake.Table(options.Table);
        if (table is null)
        {
            return [];
        }

        var first = DateOnly.FromDateTime(from).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var last = DateOnly.FromDateTime(to).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var partitions = services.Lake.Partitions(table.QualifiedName).Where(p => string.CompareOrdinal(p, first) >= 0 && string.CompareOrdinal(p, last) <= 0).ToList();
        if (partitions.Count == 0)
        {
            return [];
        }

        var time = Quote(options.TimeColumn);
        var key = grouping switch
        {
            MetricsGrouping.Hour => $"strftime(date_trunc('hour', {time}), '%Y-%m-%dT%H:00:00Z')",
            MetricsGrouping.Day => $"strftime(CAST({time} AS DATE), '%Y-%m-%d')",
            _ => $"CAST({Quote(options.TypeColumn)} AS VARCHAR)",
        };
        var sql =
            $"SELECT {key} AS k, count(*) AS events, coalesce(sum({options.Revenue}), 0) AS revenue, count(DISTINCT {Quote(options.CustomerColumn)}) AS customers " +
            $"FROM ({services.Query.Source(table, partitions)}) " +
            $"WHERE {Quote(options.TenantColumn)} = $tenant AND {time} >= $from AND {time} < $to GROUP BY 1 ORDER BY 1";
        using var db = DuckDb.OpenMemory(Path.Combine(services.Data.Root, "tmp", "duckdb"));
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Parameters.Add(new DuckDBParameter("tenant", tenant));
        cmd.Parameters.Add(new DuckDBParameter("from", DateTime.SpecifyKind(from, DateTimeKind.Utc)));
        cmd.Parameters.Add(new DuckDBParameter("to", DateTime.SpecifyKind(to, DateTimeKind.Utc)));
        using var reader = cmd.ExecuteReader();
        var rows = new List<MetricsRow>();
        while (reader.Read())
        {
            rows.Add(new MetricsRow(
                reader.IsDBNull(0) ? "" : reader.GetString(0),
                reader.GetInt64(1),
                reader.IsDBNull(2) ? 0 : Math.Round(Convert.ToDouble(reader.GetValue(2), CultureInfo.InvariantCulture), 2),
                reader.GetInt64(3)));
        }

        return rows;
    }
}
