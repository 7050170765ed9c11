using System.CommandLine;
using Sluice.Lake;

namespace Sluice.Cli.Commands;

internal static class QueryCommand
{
    public static Command Create()
    {
        var sql = new Argument<string>("sql") { Description = "One read-only SQL statement (DuckDB dialect) over the lake's tables, e.g. raw_data.vehicle_events" };
        var format = new Option<QueryFormat>("--format") { Description = "table, csv (header and rows only) or json", DefaultValueFactory = _ => QueryFormat.Table };
        var limit = new Option<int>("--max-rows") { Description = "Rows printed at most", DefaultValueFactory = _ => 100_000 };
        var command = new Command("query", "Run read-only SQL over the embedded warehouse; works while 'run' or 'demo' is running") { sql, format, limit };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.ExistingServices(result);
            var rows = services.Query.Query(result.GetValue(sql)!, result.GetValue(limit));
            await Console.Out.WriteAsync(QueryResultFormatter.Format(rows, result.GetValue(format))).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
