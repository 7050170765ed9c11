using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>The shared lake of a cluster test read through DuckDB (<c>sluice query --cluster</c>) from a folder no worker uses.</summary>
internal static class ClusterLakeQuery
{
    /// <summary>Events and items in tenant-analytics' lake tables, and how many distinct keys of each (all 0 while the lake has no such table yet).</summary>
    public static (long Events, long Distinct, long Items, long DistinctItems) Figures(TempFolder temp, IDictionary<string, string> env)
    {
        var csv = Query(temp, env,
            "SELECT (SELECT count(*) FROM analytics.events), (SELECT count(DISTINCT event_id) FROM analytics.events), " +
            "(SELECT count(*) FROM analytics.event_items), (SELECT count(DISTINCT (event_id, _index)) FROM analytics.event_items)");
        if (csv.Length == 0) { return (0, 0, 0, 0); }
        var values = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1].Split(',').Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (values[0], values[1], values[2], values[3]);
    }

    /// <summary><c>sluice query --cluster</c> as CSV; empty while the lake has no such table yet.</summary>
    public static string Query(TempFolder temp, IDictionary<string, string> env, string sql)
    {
        ArgumentNullException.ThrowIfNull(temp);
        using var p = SluiceProcess.StartIn(temp.Path, temp.Sub("elsewhere"), env, "query", sql, "--format", "csv", "--cluster");
        var code = p.WaitAsync(TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
        if (code != 0 && p.Stderr.Contains("analytics.event", StringComparison.Ordinal)) { return ""; }
        code.ShouldBe(0, p.Stderr);
        return p.Stdout;
    }
}
