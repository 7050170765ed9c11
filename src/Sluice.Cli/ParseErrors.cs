using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace Sluice.Cli;

/// <summary>
/// A value that does not convert to its option's or argument's type is said in the user's words ("--format: 'yaml' is
/// not one of table, csv, json"), never with the .NET type the parser names ("expected type 'Sluice.Cli.QueryFormat'").
/// Other parse errors (a mistyped command, with its "did you mean") keep the parser's own report.
/// </summary>
internal static partial class ParseErrors
{
    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (?:option|command|argument) '[^']*' as expected type '(?<type>[^']+)'")]
    private static partial Regex CannotParse();

    /// <summary>The messages to print instead of the parser's, or null when the parser's report is fine.</summary>
    public static List<string>? Rewrite(ParseResult result)
    {
        var conversions = result.Errors.Select(e => (Error: e, Match: CannotParse().Match(e.Message))).Where(x => x.Match.Success).ToList();
        if (conversions.Count == 0) { return null; }
        return conversions.Select(x => $"error: {Name(x.Error.SymbolResult)}: '{x.Match.Groups["value"].Value}' is not {Expected(x.Error.SymbolResult, x.Match.Groups["type"].Value)}").ToList();
    }

    private static string Name(SymbolResult? symbol) => symbol switch
    {
        OptionResult o => o.Option.Name,
        ArgumentResult a => $"<{a.Argument.Name}>",
        _ => "value",
    };

    private static string Expected(SymbolResult? symbol, string typeName)
    {
        var type = symbol switch
        {
            OptionResult o => o.Option.ValueType,
            ArgumentResult a => a.Argument.ValueType,
            _ => null,
        };
        type = type is null ? null : Nullable.GetUnderlyingType(type) ?? (type.IsArray ? type.GetElementType() : type);
        if (type?.IsEnum == true) { return "one of " + string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant())); }
        return (type?.FullName ?? typeName) switch
        {
            "System.Int64" or "System.Int32" or "System.Int16" or "System.UInt64" or "System.UInt32" => "a whole number",
            "System.Double" or "System.Single" or "System.Decimal" => "a number",
            "System.Boolean" => "true or false",
            "System.TimeSpan" => "a duration",
            "System.DateTime" or "System.DateTimeOffset" => "an ISO-8601 instant",
            _ => "a valid value",
        };
    }
}
