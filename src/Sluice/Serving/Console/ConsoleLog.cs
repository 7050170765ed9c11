using Microsoft.Extensions.Logging;

namespace Sluice.Serving.Console;

internal static partial class ConsoleLog
{
    [LoggerMessage(11200, LogLevel.Information, "Console login with token {TokenId}")]
    public static partial void LoggedIn(ILogger logger, string tokenId);

    [LoggerMessage(11201, LogLevel.Information, "Console login refused: {Reason}")]
    public static partial void LoginRefused(ILogger logger, string reason);

    [LoggerMessage(11202, LogLevel.Information, "Token {TokenId} ({Role}, tenant {Tenant}) created from the console")]
    public static partial void TokenCreated(ILogger logger, string tokenId, string role, string tenant);

    [LoggerMessage(11203, LogLevel.Information, "Token {TokenId} revoked from the console")]
    public static partial void TokenRevoked(ILogger logger, string tokenId);
}
