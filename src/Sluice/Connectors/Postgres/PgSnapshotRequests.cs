using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// What <c>sluice cdc snapshot</c> does before the running source takes over: checks the table (one of the
/// pipeline's, with a key) and the <c>--where</c> condition against the server, counts the rows, and records the
/// request where the running source polls for it (<see cref="PgSnapshotProgress"/>).
/// </summary>
public static class PgSnapshotRequests
{
    public static async Task<SnapshotRequest> SubmitAsync(
        PostgresCdcOptions options, string recipe, string pipeline, string table, string? where, int? chunkRows, IEngineServices services, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        var pattern = PgTablePattern.Parse(table, out var error) ?? throw new SluiceException($"--table '{table}': {error}");
        if (pattern.IsPattern) { throw new SluiceException($"--table '{table}' is a pattern; name one table."); }
        if (where is not null && where.Contains(';', StringComparison.Ordinal))
        {
            throw new SluiceException("--where is one condition (it goes after WHERE in each chunk's SELECT); it may not contain ';'.");
        }

        await using var connection = new NpgsqlConnection(options.Connection.ConnectionString("sluice-cdc-snapshot-request"));
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
        {
            var fatal = PgFailures.Fatal(e, $"postgres_cdc: {PgFailures.Describe(options.Connection)}");
            throw new SluiceException(fatal?.Message ?? $"postgres_cdc: cannot reach {PgFailures.Describe(options.Connection)}: {e.Message}", e);
        }

        var tables = await new PgSlotAdmin(connection, options, NullLogger.Instance).ResolveTablesAsync(ct).ConfigureAwait(false);
        var found = tables.FirstOrDefault(t => pattern.Matches(t.Schema, t.Name, options.Schema));
        if (found is null)
        {
            var name = $"{pattern.SchemaPattern ?? options.Schema}.{pattern.NamePattern}";
            await using var exists = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)", connection);
            exists.Parameters.AddWithValue(pattern.SchemaPattern ?? options.Schema);
            exists.Parameters.AddWithValue(pattern.NamePattern);
            var known = (bool)(await exists.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            throw new SluiceException(known
                ? $"table {name} is not one of pipeline '{recipe}/{pipeline}''s tables ({string.Join(", ", tables.Select(t => t.Display))}): its changes are not streamed, so it cannot be snapshotted into the stream. Add it to the source's tables: first."
                : $"unknown table {name}: database '{options.Connection.Database}' on {options.Connection.Host}:{options.Connection.Port} has no such table.");
        }

        if (found.KeyColumns.Count == 0)
        {
            throw new SluiceException($"table {found.Display} has no primary key (nor a replica identity index): an incremental snapshot reads a table in chunks by its key. Add a primary key.");
        }

        long total;
        try
        {
            total = await PgIncrementalSnapshot.CountAsync(connection, found, where, ct).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            throw new SluiceException($"--where '{where}' does not work on {found.Display}: Postgres says: {e.MessageText}{(e.Position > 0 ? $" (at character {e.Position} of SELECT count(*) FROM {found.Sql} WHERE ({where}))" : "")}");
        }

        var progress = new PgSnapshotProgress(services.Metadata, services.Time);
        progress.EnsureSchema();
        var request = new SnapshotRequest(options.Slot, options.Connection.Database, recipe, pipeline, found.Schema, found.Name, where, chunkRows ?? options.SnapshotChunkRows, PgSnapshotProgress.OnDemand)
        {
            Total = total,
        };
        return request with { Id = progress.Submit(request) };
    }

    /// <summary>
    /// The request as it stands now (its progress), or null (also while no request was ever stored, so no table). Read
    /// only: the command polls it several times a second, and a migration check would take the store's write lock each time.
    /// </summary>
    public static SnapshotRequest? Get(IEngineServices services, long id)
    {
        ArgumentNullException.ThrowIfNull(services);
        try
        {
            return new PgSnapshotProgress(services.Metadata, services.Time).Get(id);
        }
        catch (System.Data.Common.DbException) when (!Stored(services))
        {
            return null;
        }
    }

    /// <summary>
    /// The latest requests of every source of the store, newest first (<c>sluice status --cluster</c>); empty where no
    /// request was ever stored (a store no CDC pipeline used has no table, and a status command creates none).
    /// </summary>
    public static IReadOnlyList<SnapshotRequest> List(IEngineServices services, int limit = 100)
    {
        ArgumentNullException.ThrowIfNull(services);
        var version = Version(services);
        if (version == 0) { return []; }
        var progress = new PgSnapshotProgress(services.Metadata, services.Time);
        // A store an older Sluice made lacks the worker column: added once (later reads see the new version and only read).
        if (version < PgSnapshotProgress.Version) { progress.EnsureSchema(); }
        return progress.List(limit);
    }

    /// <summary>The latest requests as a cluster's status shows them (<c>status --cluster</c>, a worker's <c>/api/status</c>), newest first.</summary>
    public static IReadOnlyList<Core.Status.SnapshotRequestView> Views(IEngineServices services, int limit) =>
        List(services, limit).Select(s => new Core.Status.SnapshotRequestView(
            $"{s.Recipe}/{s.Pipeline}", s.Slot, s.Id, s.Display, s.Kind, s.Status, s.RowsRead, s.Total, s.Chunks, s.Superseded, s.Error, s.Worker,
            SqliteExtensions.ParseIso(s.UpdatedAt).UtcDateTime)).ToList();

    /// <summary>Whether the store holds the requests' table (made by the first request or the first start of a CDC source).</summary>
    private static bool Stored(IEngineServices services) => Version(services) > 0;

    /// <summary>The requests' schema version in the store (0: never made).</summary>
    private static long Version(IEngineServices services)
    {
        using var c = services.Metadata.Connect();
        return c.Scalar<long?>("SELECT version FROM component_schema WHERE component = $c", null, ("$c", PgSnapshotProgress.Component)) ?? 0;
    }
}
