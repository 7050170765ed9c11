using System.CommandLine;
using Sluice.Core;
using Sluice.Lake;

namespace Sluice.Cli.Commands;

internal static class QueryCommand
{
    public const int DefaultMaxRows = 100_000;

    public static Command Create()
    {
        var sql = new Argument<string>("sql") { Description = "One read-only SQL statement (DuckDB dialect) over the lake's tables, e.g. raw_data.vehicle_events" };
        var format = CliOutput.FormatOption("table, csv (header and rows only) or json");
        var limit = new Option<int>("--max-rows")
        {
            Description = $"Rows printed at most; a longer result is cut, said on stderr, and exits {ExitCodes.Cut} unless --max-rows was given",
            DefaultValueFactory = _ => DefaultMaxRows,
        };
        var command = new Command("query", "Run read-only SQL over the embedded warehouse; works while 'run' or 'demo' is running") { sql, format, limit };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var max = result.GetValue(limit);
            if (max < 0) { throw new SluiceException($"--max-rows {max}: give 0 or more rows."); }
            using var services = CliContext.ExistingServices(result);
            QueryResult rows;
            try
            {
                rows = services.Query.Query(result.GetValue(sql)!, max);
            }
            catch (SluiceException e) when (Core.Metadata.RecipeFootprint.Missing(services.Data, null) is { } empty)
            {
                // A table not found in a folder that holds nothing: the folder is the mistake, not the name.
                throw new SluiceException($"{e.Message}; {empty}", e);
            }

            await CliOutput.WriteAsync(result, rows, result.GetValue(format)).ConfigureAwait(false);
            if (!rows.Truncated)
            {
                return 0;
            }

            // CSV and JSON stay exactly the rows (programs read them); the cut is said beside them, never silently.
            var chosen = result.GetResult(limit) is { Implicit: false };
            await Console.Error.WriteLineAsync($"sluice query: the result has more than {max} rows; only the first {max} were printed" +
                (chosen ? " (--max-rows)" : $" (the default --max-rows; give --max-rows to choose the limit, which also makes this exit 0)")).ConfigureAwait(false);
            return chosen ? 0 : ExitCodes.Cut;
        }));
        return command;
    }
}
