using System.Globalization;
using Npgsql;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// What the cluster tests poll and read: a condition awaited with the workers' last words on failure, and one-statement
/// reads and writes on a PostgreSQL server (the shared store, the sinks' and sources' databases).
/// </summary>
internal static class ClusterProbes
{
    /// <summary>
    /// The probe's value once it finds it, polling every 200 ms; past <paramref name="patience"/> the test fails with
    /// <paramref name="what"/> and each worker's last lines.
    /// </summary>
    public static async Task<T> UntilAsync<T>(Func<Task<(bool Found, T Value)>> probe, string what, IReadOnlyList<ClusterWorker> workers, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            var (found, value) = await probe();
            if (found) { return value; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{what}: not within {patience.TotalSeconds:0} s\n{string.Join("\n", workers.Select(w => w.Stderr))}");
            await Task.Delay(200);
        }
    }

    /// <inheritdoc cref="UntilAsync{T}(Func{Task{ValueTuple{bool, T}}}, string, IReadOnlyList{ClusterWorker}, TimeSpan)"/>
    public static Task<T> UntilAsync<T>(Func<(bool Found, T Value)> probe, string what, IReadOnlyList<ClusterWorker> workers, TimeSpan patience) =>
        UntilAsync(() => Task.FromResult(probe()), what, workers, patience);

    /// <summary>
    /// Drops a test's own database of the services' PostgreSQL, ending its sessions (a test's <c>Dispose</c>: its
    /// workers are gone, but their pooled connections may not be).
    /// </summary>
    public static void DropDatabase(string database)
    {
        NpgsqlConnection.ClearAllPools();
        using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        c.Open();
        using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", c);
        drop.ExecuteNonQuery();
    }

    /// <summary>Runs one statement on <paramref name="connection"/>.</summary>
    public static async Task ExecuteAsync(string connection, string sql)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>The first column of the first row as text (null for none or NULL).</summary>
    public static async Task<string?> ScalarTextAsync(string connection, string sql)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        return (await cmd.ExecuteScalarAsync())?.ToString();
    }

    /// <summary>
    /// A count; with <paramref name="undefinedIsZero"/>, 0 while its table or schema does not exist yet (a sink's table,
    /// or the lake's manifest, is made by the first batch or worker).
    /// </summary>
    public static async Task<long> CountAsync(string connection, string sql, bool undefinedIsZero = false)
    {
        try
        {
            return Convert.ToInt64(await ScalarTextAsync(connection, sql), CultureInfo.InvariantCulture);
        }
        catch (PostgresException e) when (undefinedIsZero && e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return 0;
        }
    }

    /// <summary>
    /// The rows of <paramref name="sql"/>, read by <paramref name="read"/>; none while the tables
    /// <paramref name="needs"/> names do not all exist yet (a shared store's tables are made by the first worker).
    /// </summary>
    public static async Task<List<T>> RowsAsync<T>(string connection, string sql, Func<NpgsqlDataReader, T> read, params string[] needs)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync();
        if (needs.Length > 0)
        {
            await using var exists = new NpgsqlCommand("SELECT " + string.Join(" AND ", needs.Select(t => $"to_regclass('{t}') IS NOT NULL")), c);
            if (await exists.ExecuteScalarAsync() is not true) { return []; }
        }

        await using var cmd = new NpgsqlCommand(sql, c);
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await r.ReadAsync()) { rows.Add(read(r)); }
        return rows;
    }
}
