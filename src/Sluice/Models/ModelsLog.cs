using Microsoft.Extensions.Logging;

namespace Sluice.Models;

internal static partial class ModelsLog
{
    [LoggerMessage(23000, LogLevel.Information, "{Model} as of {AsOf:yyyy-MM-dd} on {Engine}: {Message} ({Seconds:0.00} s)")]
    public static partial void Ran(ILogger logger, string model, DateOnly asOf, string engine, string message, double seconds);

    [LoggerMessage(11600, LogLevel.Information, "{Scope}: ran {Runs} stale model-day(s) as of {Count} day(s) {First:yyyy-MM-dd}..{Last:yyyy-MM-dd} on {Engine}")]
    public static partial void Processed(ILogger logger, string scope, int runs, int count, DateOnly first, DateOnly last, string engine);

    [LoggerMessage(11601, LogLevel.Information, "{Model} cannot undo single days and is stale after its first day: the processing starts over with it rebuilt from the first day")]
    public static partial void Rebuilding(ILogger logger, string model);

    [LoggerMessage(23001, LogLevel.Information, "{Model}: rewound to before {From:yyyy-MM-dd} to reprocess from that day")]
    public static partial void Rewound(ILogger logger, string model, DateOnly from);

    [LoggerMessage(23002, LogLevel.Warning, "{Model} as of {AsOf:yyyy-MM-dd} failed: {Reason}")]
    public static partial void Failed(ILogger logger, string model, DateOnly asOf, string reason);
}
