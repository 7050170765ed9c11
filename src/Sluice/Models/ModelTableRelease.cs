using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Jobs;

namespace Sluice.Models;

/// <summary>
/// <c>sluice models release</c>: gives up a models job's claim on a table (<see cref="ModelTableClaims"/>), so that
/// another recipe may build it (after a recipe was removed or its models moved to a schema of their own). Only the
/// claim goes: the table and its rows stay (they are data, not provably garbage), and so does the old job's model
/// state. Refused while a run of the owning job holds its lock, which is held through the release so none starts
/// in between.
/// </summary>
public static class ModelTableRelease
{
    /// <param name="postgres">The PostgreSQL warehouse's settings; null for the data folder's embedded warehouse.</param>
    /// <param name="recipe">When given, the table is released only if this recipe's job owns it.</param>
    /// <returns>What was done, for the person who asked.</returns>
    public static async Task<string> ReleaseAsync(IEngineServices services, NpgsqlConnectionStringBuilder? postgres, string table, string? recipe, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(table);
        var where = postgres is null ? $"the data folder {services.Data.Root}" : $"the PostgreSQL warehouse {PostgresConnectionOptions.Describe(postgres)}";
        var owners = postgres is null ? ModelTableClaims.LakeOwners(services.Metadata) : await PostgresOwnersAsync(postgres, ct).ConfigureAwait(false);
        if (!owners.TryGetValue(table, out var owner))
        {
            throw new SluiceException($"{table} is not claimed by any models job in {where}; nothing to release. " +
                (owners.Count == 0 ? "No table is claimed there." : $"Claimed tables: {string.Join(", ", owners.Keys.Order(StringComparer.Ordinal))}."));
        }

        var slash = owner.IndexOf('/', StringComparison.Ordinal);
        var (ownerRecipe, ownerJob) = slash < 0 ? (owner, "") : (owner[..slash], owner[(slash + 1)..]);
        if (recipe is not null && !string.Equals(recipe, ownerRecipe, StringComparison.Ordinal))
        {
            throw new SluiceException($"{table} belongs to {owner} in {where}, not to recipe '{recipe}'; nothing released (leave out --recipe to release it from {owner}).");
        }

        using var held = ProcessLock.TryAcquire(JobRunner.LockFile(services.Data, ownerRecipe, ownerJob))
            ?? throw new SluiceException($"{table} is in use: a run of {owner} (the scheduler of 'sluice run', 'job run', 'models run' or a backfill) holds its lock now; nothing released. Try again when it has ended.");
        var removed = postgres is null ? ReleaseLake(services, table, owner) : await ReleasePostgresAsync(postgres, table, owner, ct).ConfigureAwait(false);
        if (!removed) { throw new SluiceException($"{table}'s claim changed while it was being released (now not {owner}'s); nothing released. Run the command again."); }
        return $"released {table} from {owner} in {where}: the next models job that builds it claims it. The table and its rows were kept " +
            $"(what {owner} last wrote is still there); {owner} is refused if it runs while another job holds the table.";
    }

    private static bool ReleaseLake(IEngineServices services, string table, string owner) =>
        new Embedded.LakeModelState(services.Metadata, owner).Release(table, owner);

    private static async Task<IReadOnlyDictionary<string, string>> PostgresOwnersAsync(NpgsqlConnectionStringBuilder pg, CancellationToken ct)
    {
        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var c = await OpenAsync(pg, ct).ConfigureAwait(false);
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('sluice.model_tables') IS NOT NULL", c))
        {
            if (await exists.ExecuteScalarAsync(ct).ConfigureAwait(false) is not true) { return owners; }
        }

        await using var cmd = new NpgsqlCommand("SELECT table_name, scope FROM sluice.model_tables", c);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) { owners[r.GetString(0)] = r.GetString(1); }
        return owners;
    }

    private static async Task<bool> ReleasePostgresAsync(NpgsqlConnectionStringBuilder pg, string table, string owner, CancellationToken ct)
    {
        await using var c = await OpenAsync(pg, ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("DELETE FROM sluice.model_tables WHERE table_name = $1 AND scope = $2", c);
        cmd.Parameters.AddWithValue(table);
        cmd.Parameters.AddWithValue(owner);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
    }

    private static async Task<NpgsqlConnection> OpenAsync(NpgsqlConnectionStringBuilder pg, CancellationToken ct)
    {
        var c = new NpgsqlConnection(pg.ConnectionString);
        try
        {
            await c.OpenAsync(ct).ConfigureAwait(false);
            return c;
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException)
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw new SluiceException($"cannot reach the PostgreSQL warehouse {PostgresConnectionOptions.Describe(pg)}: {e.Message} (settings come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)", e);
        }
    }
}
