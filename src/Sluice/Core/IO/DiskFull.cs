using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Sluice.Core.IO;

/// <summary>
/// Recognises "the disk is full" (ENOSPC, EDQUOT, SQLite's SQLITE_FULL, DuckDB's out-of-space text) wherever it was
/// raised, so that callers treat it as what it is: a condition of the machine that passes when space is freed, not a
/// defect to report with a stack trace, and never a reason to give up data.
/// </summary>
public static partial class DiskFull
{
    private const int NoSpace = 28; // ENOSPC
    private const int QuotaExceeded = 122; // EDQUOT
    private const int SqliteFull = 13; // SQLITE_FULL

    public static bool Is(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case IOException io when (io.HResult & 0xFFFF) is NoSpace or QuotaExceeded:
                case SqliteException { SqliteErrorCode: SqliteFull }:
                    return true;
            }

            if (e.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase)
                || e.Message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The message of the innermost error that says what was full. .NET names the file in its own errors; SQLite's
    /// "database or disk is full" names none, so it is said to be the metadata store at <paramref name="metadataPath"/>
    /// (the only SQLite database Sluice opens): an operator must learn which file could not grow, whichever writer met it.
    /// </summary>
    public static string Describe(Exception error, string? metadataPath = null)
    {
        ArgumentNullException.ThrowIfNull(error);
        var said = error.Message;
        var sqlite = false;
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is IOException or SqliteException || e.Message.Contains("space", StringComparison.OrdinalIgnoreCase))
            {
                said = e.Message;
                sqlite = e is SqliteException;
            }
        }

        said = said.ReplaceLineEndings(" ").Trim();
        return sqlite ? $"the metadata store {metadataPath ?? "meta.db"} cannot grow: {said}" : said;
    }

    [LoggerMessage(9600, LogLevel.Error, "{File}: no space left on device ({Detail}); the file stays in processing/ and is tried again every {RetrySeconds} s until it lands")]
    public static partial void FileWaits(ILogger logger, string file, string detail, int retrySeconds);

    [LoggerMessage(9601, LogLevel.Information, "Trying again the {Count} file(s) that waited in processing/ for disk space")]
    public static partial void Retrying(ILogger logger, int count);
}
