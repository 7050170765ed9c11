using Npgsql;

namespace Sluice.IntegrationTests.Support;

/// <summary>Cleanup of a CDC test's own database and replication slot on a server.</summary>
internal static class PgTestDatabase
{
    /// <summary>Drops the slot once no process holds it any more (a killed one lets go within seconds), then the database.</summary>
    public static async Task DropAsync(NpgsqlConnection admin, string slot, string database)
    {
        ArgumentNullException.ThrowIfNull(admin);
        for (var i = 0; i < 50; i++)
        {
            await using var active = new NpgsqlCommand($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}' AND active", admin);
            if ((long)(await active.ExecuteScalarAsync())! == 0) { break; }
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
