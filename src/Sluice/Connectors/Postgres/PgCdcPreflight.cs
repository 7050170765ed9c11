using Npgsql;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// What a <c>postgres_cdc</c> source needs of its server before it can start, checked by <c>sluice validate --connect</c>
/// without changing anything: the server answers, logical decoding is on, the role may stream (REPLICATION), every
/// <c>tables:</c> entry matches a table whose updates Postgres can publish, and the publication and slot exist or can
/// be created.
/// </summary>
internal static class PgCdcPreflight
{
    public static async Task<IReadOnlyList<string>> CheckAsync(PostgresCdcOptions options, CancellationToken ct)
    {
        var problems = new List<string>();
        await using var connection = await PgPreflight.OpenAsync(options.Connection.Builder(), "connection", problems, ct).ConfigureAwait(false);
        if (connection is null) { return problems; }
        var server = $"postgres {PostgresConnectionOptions.Describe(options.Connection.Builder())}";

        var (user, canReplicate, canCreate, walLevel, freeSlots) = await RoleAndServerAsync(connection, ct).ConfigureAwait(false);
        if (!canReplicate)
        {
            problems.Add($"connection: role '{user}' has neither REPLICATION nor SUPERUSER ({server}), so it cannot create or read the replication slot (ALTER ROLE {PgSlotAdmin.Quote(user)} REPLICATION)");
        }

        if (walLevel != "logical")
        {
            problems.Add($"connection: the server's wal_level is '{walLevel}' ({server}); change data capture needs wal_level = logical (then restart the server)");
        }

        var used = new HashSet<CdcTableRule>();
        foreach (var (schema, name, identity, key) in await PgSlotAdmin.CatalogAsync(connection, ct).ConfigureAwait(false))
        {
            if (options.Tables.FirstOrDefault(t => t.Pattern.Matches(schema, name, options.Schema)) is not { } rule) { continue; }
            used.Add(rule);
            if (PgSlotAdmin.NoReplicaIdentity(identity, key) is { } why)
            {
                problems.Add($"tables: {schema}.{name} has {why}, so Postgres cannot publish its updates and deletes (and refuses them once it is published): add a primary key or ALTER TABLE ... REPLICA IDENTITY FULL");
            }
        }

        foreach (var missing in PgSlotAdmin.Unmatched(options, used))
        {
            problems.Add($"tables: {missing} not found in database '{options.Connection.Database}'");
        }

        if (!await ExistsAsync(connection, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", options.Publication, ct).ConfigureAwait(false) && !canCreate)
        {
            problems.Add($"publication: '{options.Publication}' does not exist and role '{user}' may not create it ({server}; it needs CREATE on database '{options.Connection.Database}': GRANT CREATE ON DATABASE ...)");
        }

        await using var slot = new NpgsqlCommand("SELECT coalesce(plugin, ''), coalesce(database, '') FROM pg_replication_slots WHERE slot_name = $1", connection);
        slot.Parameters.AddWithValue(options.Slot);
        await using var r = await slot.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var (plugin, database) = (r.GetString(0), r.GetString(1));
            if (plugin != "pgoutput" || database != options.Connection.Database)
            {
                problems.Add($"slot: '{options.Slot}' exists for {(plugin.Length == 0 ? "physical replication" : $"plugin '{plugin}'")} on database '{database}', not pgoutput on '{options.Connection.Database}' ({server}): name another slot");
            }
        }
        else if (freeSlots <= 0)
        {
            problems.Add($"slot: '{options.Slot}' does not exist and the server has no free replication slot (max_replication_slots is reached; {server})");
        }

        return problems;
    }

    private static async Task<(string User, bool Replicate, bool Create, string WalLevel, long FreeSlots)> RoleAndServerAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT current_user::text, r.rolreplication OR r.rolsuper, has_database_privilege(current_database(), 'CREATE'), current_setting('wal_level'), " +
            "current_setting('max_replication_slots')::bigint - (SELECT count(*) FROM pg_replication_slots) FROM pg_roles r WHERE r.rolname = current_user", connection);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        return (r.GetString(0), r.GetBoolean(1), r.GetBoolean(2), r.GetString(3), r.GetInt64(4));
    }

    private static async Task<bool> ExistsAsync(NpgsqlConnection connection, string sql, string value, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection);
        cmd.Parameters.AddWithValue(value);
        return (bool)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }
}
