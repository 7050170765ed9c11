using System.CommandLine;
using System.Globalization;
using Sluice.Lake;

namespace Sluice.Cli;

/// <summary>How listings print: <c>--format table|csv|json</c> on each, and tables cut to the terminal's width unless <c>--wide</c>.</summary>
internal static class CliOutput
{
    public static readonly Option<bool> Wide = new("--wide")
    {
        Description = "Print table columns whole (a table on a terminal is cut to its width)",
        Recursive = true,
    };

    public static Option<QueryFormat> FormatOption(string description = "table, csv or json (instants in ISO 8601, UTC)") => new("--format")
    {
        Description = description,
        HelpName = "table|csv|json",
        DefaultValueFactory = _ => QueryFormat.Table,
    };

    public static Task WriteAsync(ParseResult result, QueryResult rows, QueryFormat format) =>
        Console.Out.WriteAsync(QueryResultFormatter.Format(rows, format, format == QueryFormat.Table && !result.GetValue(Wide) ? TerminalWidth() : null));

    /// <summary><c>COLUMNS</c> when set (as shells and scripts set it), else the terminal's width; none when the output is not a terminal.</summary>
    private static int? TerminalWidth()
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.None, CultureInfo.InvariantCulture, out var columns) && columns > 0) { return columns; }
        if (Console.IsOutputRedirected) { return null; }
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
