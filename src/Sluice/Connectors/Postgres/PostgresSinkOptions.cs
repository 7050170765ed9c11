using Npgsql;
using Sluice.Core.Config;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Options of the <c>postgres</c> sink. The server comes from libpq's variables (<c>PGHOST PGPORT PGUSER PGPASSWORD
/// PGDATABASE</c>) unless <c>connection</c> names a full connection string.
/// </summary>
public sealed class PostgresSinkOptions : Core.Pipeline.IChecksBatchTables, Core.Recipes.IConnectionCheck
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PostgresSinkOptions Default = new();

    public async Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        var settings = new NpgsqlConnectionStringBuilder(ConnectionString());
        await using var connection = await PgPreflight.OpenAsync(settings, "connection", problems, ct).ConfigureAwait(false);
        if (connection is null) { return problems; }
        problems.AddRange(await PgPreflight.SchemaRightsAsync(connection, Schema, $"postgres {PostgresConnectionOptions.Describe(settings)}", ct).ConfigureAwait(false));
        return problems;
    }

    /// <summary>Every table needs its key under <c>keys:</c>, made of its own columns: the key is what makes a replay harmless.</summary>
    public string? Problem(Core.Schema.TableSchema table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (Mirror) { return null; }
        var columns = string.Join(", ", table.Fields.Select(f => f.Name));
        if (!Keys.TryGetValue(table.Table, out var key))
        {
            return $"postgres sink postgres:{Schema}: no key for table '{table.Table}'; add it under keys: (its columns: {columns})";
        }

        return key.FirstOrDefault(k => table.IndexOf(k) < 0) is { } missing
            ? $"postgres sink postgres:{Schema}: keys.{table.Table} names '{missing}', which is not a column of the table (its columns: {columns})"
            : null;
    }

    /// <summary>An Npgsql connection string (default: built from the PG* environment variables, host 127.0.0.1, port 5432).</summary>
    public string? Connection { get; init; }

    /// <summary>The PostgreSQL schema the tables are created in (required).</summary>
    public string Schema { get; init; } = "";

    /// <summary>The key of each table (batch table name to columns): a row whose key exists replaces it (the last write wins), which makes replays harmless.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Keys { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Optional renames, batch table name to PostgreSQL table name.</summary>
    public IReadOnlyDictionary<string, string> Tables { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// <c>changes</c> (default): every row as it comes, idempotent on <see cref="Keys"/>. <c>mirror</c>: each table holds
    /// the current state of a change-data-capture source's table, keyed by its primary key (docs/CDC.md, "Mirrors").
    /// </summary>
    public bool Mirror { get; init; }

    /// <summary>Attempts per batch on transient failures (connection lost, server restarting), with doubling pauses from 200 ms.</summary>
    public int Attempts { get; init; } = 8;

    /// <summary>The retry of a batch's transaction: 200 ms doubling up to 10 s, <see cref="Attempts"/> in all.</summary>
    public Core.Resilience.RetryOptions Retry => new(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), Attempts);

    public string ConnectionString()
    {
        var builder = Connection is { Length: > 0 } configured ? new NpgsqlConnectionStringBuilder(configured) : PostgresConnectionOptions.FromEnvironment().Builder();
        if (Connection is not { Length: > 0 }) { builder.ApplicationName = "sluice"; }
        // A worker paused mid-transaction (SIGSTOP, a frozen VM) keeps its row locks (its rows, the partition marks, a
        // mirror's positions), and the worker that took its work over would wait on them until its command timeout (30 s)
        // failed its pipeline. The server ends such a transaction instead: the paused worker's write is rolled back, and
        // it is fenced when it wakes. A sink's transaction is idle only between its statements. Every sink session, not
        // only fenced batches': a pull's pages and a relayed CDC batch are taken over the same way.
        builder.Options = $"{builder.Options} -c idle_in_transaction_session_timeout={(int)IdleInTransactionTimeout.TotalMilliseconds}".Trim();
        return builder.ConnectionString;
    }

    /// <summary>How long the server lets a sink's transaction sit idle before it ends it (see <see cref="ConnectionString"/>).</summary>
    public static readonly TimeSpan IdleInTransactionTimeout = TimeSpan.FromSeconds(10);

    public static PostgresSinkOptions Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var keys = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var mode = map.String("mode", "changes", doc: "`changes` (rows inserted, or upserted by `keys`) or `mirror` (the source tables kept equal to a postgres_cdc source's, keyed by their primary key).");
        var mirror = mode == "mirror";
        if (mode is not ("changes" or "mirror")) { map.Error("mode", $"postgres sink: '{mode}' is not a mode (changes: every row as it comes; mirror: the current state of a postgres_cdc source's tables)"); }
        if (mirror && map.Has("keys")) { map.Error("keys", "postgres sink: not used with mode: mirror (a mirror is keyed by the source table's primary key); remove it"); }
        if (!mirror && map.Map("keys", required: true, doc: "The key of each table (batch table name to columns): a row whose key exists replaces it (the last write wins), which makes replays harmless.") is { } keyMap)
        {
            foreach (var table in keyMap.Keys.ToList())
            {
                var columns = keyMap.StringList(table);
                if (columns.Count == 0) { keyMap.Error(table, "name the key columns, for example [tenant_id, event_id]"); }
                keys[table] = columns;
            }

            keyMap.Done();
        }

        var tables = new Dictionary<string, string>(StringComparer.Ordinal);
        if (map.Map("tables", doc: "Optional renames, batch table name to PostgreSQL table name.") is { } renames)
        {
            foreach (var key in renames.Keys.ToList()) { tables[key] = renames.String(key) ?? key; }
            renames.Done();
        }

        var options = new PostgresSinkOptions
        {
            Connection = map.String("connection", doc: "An Npgsql connection string."),
            Schema = map.RequiredString("schema", doc: "The PostgreSQL schema the tables are created in (required)."),
            Keys = keys,
            Tables = tables,
            Attempts = map.Int("attempts", Default.Attempts, 1, 100, doc: "Attempts per batch on transient failures (connection lost, server restarting), with doubling pauses from 200 ms."),
            Mirror = mirror,
        };
        if (options.Schema.Length > 0 && !Http.Ingest.HttpIngestOptions.IdentifierRegex().IsMatch(options.Schema))
        {
            map.Error("schema", $"'{options.Schema}' must be letters, digits and '_'");
        }

        if (options.Connection is { Length: > 0 } c)
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(c);
            }
            catch (ArgumentException e)
            {
                map.Error("connection", $"not a valid connection string: {e.Message}");
            }
        }

        return options;
    }
}
