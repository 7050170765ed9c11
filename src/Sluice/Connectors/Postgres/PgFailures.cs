using System.Net.Sockets;
using Npgsql;
using Sluice.Core;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// How Postgres sources take an error. A lost connection, a server starting up, shutting down or out of connections is
/// transient: waited out and retried. A refused login, a missing database, table or column, or missing rights are
/// permanent (<see cref="FatalException"/>): retrying only hides them, so the run stops with what to do.
/// </summary>
internal static class PgFailures
{
    /// <summary>
    /// The connection went away or could not be made (refused, reset, timed out, the server starting, shutting down or
    /// out of connections), or the server aborted a transaction to resolve a conflict (serialization failure, deadlock,
    /// a lock not available) that the same transaction tried again gets past; not an answer about the login, the slot
    /// (in use by another process: 55006) or the tables. Sources and sinks share this one notion.
    /// </summary>
    public static bool IsTransient(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal) ||
            p.SqlState is "57P01" or "57P02" or "57P03" or "53000" or "53300" or "40001" or "40P01" or "55P03",
        NpgsqlException => true,
        // A full local disk is not a lost connection: it has its own handling (Core/IO/DiskFull) and its own message.
        IOException io => !Core.IO.DiskFull.Is(io),
        SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// The error as a <see cref="FatalException"/> saying where (<paramref name="where"/>: the component and
    /// <c>user@host:port/database</c>) and what to do, when it is one that retrying cannot cure; else null.
    /// </summary>
    public static FatalException? Fatal(Exception e, string where)
    {
        if (e is not PostgresException p)
        {
            return null;
        }

        var what = p.SqlState switch
        {
            "28P01" => $"the server refused the login ({p.MessageText}); check the password (PGPASSWORD, or `password:` in the recipe's connection block)",
            "28000" => $"the server refused the login ({p.MessageText}); the server's pg_hba.conf has no entry for this user, database and address",
            "3D000" => $"{p.MessageText}; create it, or correct the database name",
            "42P01" => $"{p.MessageText}; create it, or correct the table name",
            "42703" => $"{p.MessageText}; correct the column name",
            "42501" => $"{p.MessageText}; grant the user what it needs (see the recipe's page)",
            _ => null,
        };
        return what is null ? null : new FatalException($"{where}: {what}", e);
    }

    /// <summary><c>user@host:port/database</c> of the options, never the password.</summary>
    public static string Describe(PostgresConnectionOptions options) => PostgresConnectionOptions.Describe(options.Builder());
}
