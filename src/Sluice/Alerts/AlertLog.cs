using Microsoft.Extensions.Logging;

namespace Sluice.Alerts;

internal static partial class AlertLog
{
    [LoggerMessage(11400, LogLevel.Information, "{Recipe}: checking {Rules} alert(s) every {Seconds} s; notices to {Channels}")]
    public static partial void Watching(ILogger logger, string recipe, int rules, double seconds, string channels);

    [LoggerMessage(11401, LogLevel.Warning, "alert {Alert} ({Severity}) fired: {Message}")]
    public static partial void Fired(ILogger logger, string alert, string severity, string message);

    [LoggerMessage(11402, LogLevel.Information, "alert {Alert} resolved: {Message}")]
    public static partial void Resolved(ILogger logger, string alert, string message);

    [LoggerMessage(11403, LogLevel.Warning, "alert {Alert}: the {Event} notice could not be sent by {Channel} to {Target} ({Reason}); it is tried again at the next check ({Round} of {Rounds})")]
    public static partial void NotDelivered(ILogger logger, string alert, string @event, string channel, string target, string reason, int round, int rounds);

    [LoggerMessage(11404, LogLevel.Error, "alert {Alert}: the {Event} notice is given up for {Channel} ({Target}) after {Round} check(s): {Reason}")]
    public static partial void Abandoned(ILogger logger, string alert, string @event, string channel, string target, int round, string reason);

    [LoggerMessage(11405, LogLevel.Warning, "alert {Alert} could not be checked this time: {Reason}")]
    public static partial void CheckFailed(ILogger logger, string alert, string reason);

    [LoggerMessage(11406, LogLevel.Information, "alert {Alert}: {Event} notice sent by {Channel} to {Target}")]
    public static partial void Delivered(ILogger logger, string alert, string @event, string channel, string target);

    [LoggerMessage(11407, LogLevel.Warning, "alerts of {Recipe}: the alert store cannot be read or written ({Reason}); tried again at the next check")]
    public static partial void StoreUnavailable(ILogger logger, string recipe, string reason);
}
