using System.Globalization;
using Npgsql;
using Sluice.Connectors.Postgres;

namespace Sluice.IntegrationTests.Support;

/// <summary>A CDC test's own database: one statement against it, and its cleanup (database and replication slot).</summary>
internal static class PgTestDatabase
{
    /// <summary>The first value of <paramref name="sql"/>'s first row, converted to <typeparamref name="T"/>.</summary>
    public static async Task<T> ScalarAsync<T>(PostgresConnectionOptions pg, string sql)
    {
        ArgumentNullException.ThrowIfNull(pg);
        await using var connection = await ServerSettings.OpenPostgresAsync(pg.ConnectionString("sluice-test"));
        await using var cmd = new NpgsqlCommand(sql, connection);
        return (T)Convert.ChangeType((await cmd.ExecuteScalarAsync())!, typeof(T), CultureInfo.InvariantCulture);
    }

    public static async Task ExecuteAsync(PostgresConnectionOptions pg, string sql)
    {
        ArgumentNullException.ThrowIfNull(pg);
        await using var connection = await ServerSettings.OpenPostgresAsync(pg.ConnectionString("sluice-test"));
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Drops the slot once no process holds it any more, then the database. A killed process's WAL sender lets go within
    /// seconds; one still holding it after 30 s (a loaded machine) is ended, as the test is over either way.
    /// </summary>
    public static async Task DropAsync(NpgsqlConnection admin, string slot, string database)
    {
        ArgumentNullException.ThrowIfNull(admin);
        for (var i = 0; i < 150; i++)
        {
            await using var active = new NpgsqlCommand($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active", admin);
            if ((long)(await active.ExecuteScalarAsync())! == 0) { break; }
            if (i == 149)
            {
                await using var end = new NpgsqlCommand($"SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active", admin);
                await end.ExecuteNonQueryAsync();
            }

            await Task.Delay(200);
        }

        await using (var drop = new NpgsqlCommand($"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'", admin))
        {
            await drop.ExecuteNonQueryAsync();
        }

        await using var dropDb = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
        await dropDb.ExecuteNonQueryAsync();
    }
}
