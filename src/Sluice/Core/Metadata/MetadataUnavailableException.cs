using Microsoft.Data.Sqlite;

namespace Sluice.Core.Metadata;

/// <summary>The metadata store cannot be opened or written: one message with the path, the cause and what to do.</summary>
public sealed class MetadataUnavailableException : SluiceException
{
    public MetadataUnavailableException(DataDirectory data, Exception cause)
        : base($"cannot open the metadata store {data?.MetadataPath}: {Describe(cause, data?.Root ?? "")}", cause)
    {
    }

    public MetadataUnavailableException() { }

    public MetadataUnavailableException(string message) : base(message) { }

    public MetadataUnavailableException(string message, Exception inner) : base(message, inner) { }

    /// <summary>What went wrong and what to do about it, from SQLite's primary result code or the file system's error.</summary>
    public static string Describe(Exception cause, string dataRoot)
    {
        ArgumentNullException.ThrowIfNull(cause);
        var recover = $"restore it from a backup, or run `sluice recover --data {dataRoot}` (it keeps the damaged file aside)";
        return cause switch
        {
            // Extended result codes carry the primary code in their low byte.
            SqliteException e => (e.SqliteErrorCode & 0xFF) switch
            {
                11 => $"the database is corrupt (SQLITE_CORRUPT); {recover}",
                26 => $"the file is not a SQLite database (corrupt?) (SQLITE_NOTADB); {recover}",
                8 => "it is read-only (SQLITE_READONLY): make the file, its folder and the file system writable",
                14 => $"it cannot be opened (SQLITE_CANTOPEN): {WhyNotOpened(dataRoot) ?? "check that meta.db and its folder can be read and written"}",
                3 => "access denied (SQLITE_PERM): check the permissions of meta.db and its folder",
                23 => "access denied (SQLITE_AUTH): check the permissions of meta.db and its folder",
                13 => "the disk is full (SQLITE_FULL): free some space",
                10 => $"disk I/O error (SQLITE_IOERR): {e.Message}",
                _ => e.Message,
            },
            _ when WhyNotOpened(dataRoot) is { } why => why,
            UnauthorizedAccessException e => $"access denied: {e.Message}",
            _ => cause.Message,
        };
    }

    /// <summary>SQLite does not say why it could not open a file; the usual reasons can be checked.</summary>
    private static string? WhyNotOpened(string dataRoot)
    {
        var path = System.IO.Path.Combine(dataRoot, "meta.db");
        if (Directory.Exists(path))
        {
            return "meta.db is a folder, not a file";
        }

        try
        {
            // The WAL needs files beside meta.db: a folder that cannot be written (a read-only mount) cannot open it.
            using var probe = new FileStream(System.IO.Path.Combine(dataRoot, $".write-probe-{Environment.ProcessId}"), FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"its folder {dataRoot} cannot be written ({e.Message}): make it writable";
        }

        return null;
    }
}
