using System.Net.Sockets;
using Npgsql;

namespace Sluice.Connectors.Postgres;

/// <summary>What <c>sluice validate --connect</c> asks a Postgres server: does it answer, does a table have the columns a component names.</summary>
public static class PgPreflight
{
    /// <summary>An open connection (5 s to answer), or null with the reason added to <paramref name="problems"/> under <paramref name="key"/>.</summary>
    internal static async Task<NpgsqlConnection?> OpenAsync(NpgsqlConnectionStringBuilder settings, string key, List<string> problems, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(settings.ConnectionString) { Timeout = 5, Pooling = false, ApplicationName = "sluice-validate" };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            return connection;
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            problems.Add($"{key}: cannot connect to postgres {PostgresConnectionOptions.Describe(builder)}: {Reason(e)}");
            return null;
        }
    }

    /// <summary>The server's own words: a Postgres error's message, else the innermost cause (connection refused, no such host).</summary>
    public static string Reason(Exception e)
    {
        return e is PostgresException pg ? pg.MessageText : Core.Recipes.ConnectionCheck.Cause(e);
    }

    /// <summary>The columns of <paramref name="schema"/>.<paramref name="table"/> in order, or null when there is no such table (or view).</summary>
    internal static async Task<List<string>?> ColumnsAsync(NpgsqlConnection connection, string schema, string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT a.attname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped " +
            "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY a.attnum", connection);
        cmd.Parameters.AddWithValue(schema);
        cmd.Parameters.AddWithValue(table);
        List<string>? columns = null;
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            columns ??= [];
            if (!r.IsDBNull(0)) { columns.Add(r.GetString(0)); }
        }

        return columns;
    }

    /// <summary>
    /// Checks that <paramref name="schema"/>.<paramref name="table"/> exists with every column named (key: column), adding one
    /// problem per missing piece. <paramref name="ignoreCase"/>: names matched as the pull matches its <c>columns:</c>.
    /// </summary>
    internal static async Task TableAsync(NpgsqlConnection connection, string tableKey, string schema, string table, IEnumerable<(string Key, string Column)> needed, List<string> problems, CancellationToken ct, bool ignoreCase = false)
    {
        var columns = await ColumnsAsync(connection, schema, table, ct).ConfigureAwait(false);
        if (columns is null)
        {
            problems.Add($"{tableKey}: table {schema}.{table} not found in database '{connection.Database}'");
            return;
        }

        var comparer = ignoreCase ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;
        foreach (var (key, column) in needed.Where(n => !columns.Contains(n.Column, comparer)))
        {
            problems.Add($"{key}: column '{column}' not found in {schema}.{table} (its columns: {string.Join(", ", columns)})");
        }
    }

    /// <summary>
    /// What a sink that creates its tables needs of <paramref name="schema"/>: it runs <c>CREATE SCHEMA IF NOT EXISTS</c>
    /// (which Postgres checks against CREATE on the database even when the schema exists), then creates tables in it
    /// (USAGE and CREATE on the schema). One problem per missing right, under <c>schema</c>, naming role, server and the grant.
    /// </summary>
    internal static async Task<List<string>> SchemaRightsAsync(NpgsqlConnection connection, string schema, string server, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT current_user::text, current_database()::text, has_database_privilege(current_database(), 'CREATE'), " +
            "(SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = $1), (SELECT has_schema_privilege(n.oid, 'CREATE') FROM pg_namespace n WHERE n.nspname = $1)", connection);
        cmd.Parameters.AddWithValue(schema);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        var (user, database, createSchema) = (r.GetString(0), r.GetString(1), r.GetBoolean(2));
        var (exists, usage, create) = (!r.IsDBNull(3), !r.IsDBNull(3) && r.GetBoolean(3), !r.IsDBNull(4) && r.GetBoolean(4));
        var role = PgSlotAdmin.Quote(user);
        var problems = new List<string>();
        if (!createSchema)
        {
            problems.Add($"schema: role '{user}' has no CREATE on database '{database}' ({server}), which the sink's CREATE SCHEMA IF NOT EXISTS {PgSlotAdmin.Quote(schema)} needs even when the schema exists (GRANT CREATE ON DATABASE {PgSlotAdmin.Quote(database)} TO {role})");
        }

        if (exists && !usage)
        {
            problems.Add($"schema: role '{user}' has no USAGE on schema '{schema}' ({server}), so it cannot reach the sink's tables (GRANT USAGE ON SCHEMA {PgSlotAdmin.Quote(schema)} TO {role})");
        }

        if (exists && !create)
        {
            problems.Add($"schema: role '{user}' has no CREATE on schema '{schema}' ({server}), so it cannot create the sink's tables (GRANT CREATE ON SCHEMA {PgSlotAdmin.Quote(schema)} TO {role})");
        }

        return problems;
    }

    /// <summary>A lookup's dimension: <c>dimension.table</c> exists in its database with <c>dimension.key</c> and every field of <c>fields</c>.</summary>
    public static async Task<IReadOnlyList<string>> DimensionAsync(PostgresConnectionOptions server, string schema, string table, string key, IEnumerable<string> fields, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(server);
        var problems = new List<string>();
        await using var connection = await OpenAsync(server.Builder(), "dimension.connection", problems, ct).ConfigureAwait(false);
        if (connection is null) { return problems; }
        await TableAsync(connection, "dimension.table", schema, table, fields.Select(f => ("fields", f)).Prepend(("dimension.key", key)), problems, ct).ConfigureAwait(false);
        return problems;
    }
}
