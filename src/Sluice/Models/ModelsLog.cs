using Microsoft.Extensions.Logging;

namespace Sluice.Models;

internal static partial class ModelsLog
{
    [LoggerMessage(5001, LogLevel.Information, "{Model} as of {AsOf:yyyy-MM-dd} on {Engine}: {Message} ({Seconds:0.00} s)")]
    public static partial void Ran(ILogger logger, string model, DateOnly asOf, string engine, string message, double seconds);

    [LoggerMessage(5002, LogLevel.Information, "{Scope}: processing {Count} day(s) {First:yyyy-MM-dd}..{Last:yyyy-MM-dd} on {Engine}, from {Start:yyyy-MM-dd}")]
    public static partial void Processing(ILogger logger, string scope, int count, DateOnly first, DateOnly last, string engine, DateOnly start);

    [LoggerMessage(5003, LogLevel.Information, "{Model}: rewound to before {From:yyyy-MM-dd} to reprocess from that day")]
    public static partial void Rewound(ILogger logger, string model, DateOnly from);

    [LoggerMessage(5004, LogLevel.Warning, "{Model} as of {AsOf:yyyy-MM-dd} failed: {Reason}")]
    public static partial void Failed(ILogger logger, string model, DateOnly asOf, string reason);
}
