using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Sluice.Core.Metadata;

/// <summary>
/// The metadata store's SQL helpers. They take any ADO.NET connection so that the stores written for both providers
/// keep one text of SQL: on a Postgres connection (a cluster's shared store) the text is translated once by
/// <see cref="PostgresMetadataDialect"/>; on SQLite it runs as written.
/// </summary>
internal static class SqliteExtensions
{
    public static DbCommand Command(this DbConnection connection, string sql, DbTransaction? tx = null, params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var postgres = connection is NpgsqlConnection;
        var cmd = connection.CreateCommand();
        cmd.CommandText = postgres ? PostgresMetadataDialect.Statement(sql) : sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = postgres ? name.TrimStart('$') : name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }

    public static int Execute(this DbConnection connection, string sql, DbTransaction? tx = null, params (string Name, object? Value)[] parameters)
    {
        using var cmd = connection.Command(sql, tx, parameters);
        return cmd.ExecuteNonQuery();
    }

    public static T? Scalar<T>(this DbConnection connection, string sql, DbTransaction? tx = null, params (string Name, object? Value)[] parameters)
    {
        using var cmd = connection.Command(sql, tx, parameters);
        var value = cmd.ExecuteScalar();
        if (value is null or DBNull)
        {
            return default;
        }

        return (T)Convert.ChangeType(value, Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// A transaction that holds the store's write lock from its first statement, for a read followed by a write that must
    /// see no other writer in between: SQLite's <c>BEGIN IMMEDIATE</c>; on Postgres, the store's transaction-level
    /// advisory lock, which every such transaction of every process of the cluster takes.
    /// </summary>
    public static DbTransaction BeginWrite(this DbConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (connection is SqliteConnection sqlite)
        {
            return sqlite.BeginTransaction(deferred: false);
        }

        var tx = connection.BeginTransaction();
        connection.Execute(PostgresMetadataDialect.WriteLock, tx);
        return tx;
    }

    public static string Iso(this DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseIso(string value) =>
        DateTimeOffset.Parse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
