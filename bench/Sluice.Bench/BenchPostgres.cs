using Npgsql;

namespace Sluice.Bench;

/// <summary>What the PostgreSQL benches run just before a measured statement set, the same before both sides of a comparison.</summary>
internal static class BenchPostgres
{
    /// <summary>
    /// Runs <paramref name="first"/> (VACUUM ANALYZE of what the next side reads, so that autovacuum does not wake on it
    /// in the middle), then a <c>CHECKPOINT</c>: the dirty pages of what came before (a million-row load) are written now,
    /// not by a checkpoint landing in one side's measured window (1 to 2 s of one run in five, docs/BENCHMARKS.md).
    /// </summary>
    public static async Task QuietAsync(NpgsqlConnectionStringBuilder pg, CancellationToken ct, params string[] first)
    {
        await using var c = new NpgsqlConnection(pg.ConnectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        foreach (var sql in first.Append("CHECKPOINT"))
        {
            await using var cmd = new NpgsqlCommand(sql, c) { CommandTimeout = 0 };
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }
}
