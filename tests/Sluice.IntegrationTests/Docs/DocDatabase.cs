using Npgsql;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Docs;

/// <summary>A fresh PostgreSQL database on the test server for one page's commands; dropped with its replication slots afterwards.</summary>
internal sealed class DocDatabase : IAsyncDisposable
{
    private DocDatabase(string name) => Name = name;

    public string Name { get; }

    public static async Task<DocDatabase> CreateAsync()
    {
        var database = new DocDatabase($"sluice_docs_{Guid.NewGuid().ToString("N")[..10]}");
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {database.Name}", admin);
        await create.ExecuteNonQueryAsync();
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        // A slot outlives its database's connections and would keep WAL (and its name) on the shared server.
        await using (var slots = new NpgsqlCommand("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", admin))
        {
            slots.Parameters.AddWithValue(Name);
            await slots.ExecuteNonQueryAsync();
        }

        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
