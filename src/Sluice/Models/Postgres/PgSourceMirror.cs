using System.Globalization;
using Npgsql;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Lake;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models.Postgres;

/// <summary>
/// Copies source lake tables into PostgreSQL tables of the same name, one partition per transaction, and only the
/// partitions whose files changed since the last copy (their fingerprint is kept in <c>sluice.source_partitions</c>,
/// written in the same transaction). DuckDB reads the Parquet files into CSV, which COPY loads. PostgreSQL text cannot
/// hold U+0000, so that one character is dropped on the way (cleaning rules strip control characters anyway).
/// </summary>
internal sealed class PgSourceMirror(NpgsqlConnection connection, IEngineServices services)
{
    public async Task SyncAsync(SourceSnapshot sources, CancellationToken ct)
    {
        foreach (var (table, files) in sources.Tables)
        {
            var wanted = sources.PartitionFingerprints(table.QualifiedName);
            await EnsureTableAsync(table, ct).ConfigureAwait(false);
            var have = await CopiedAsync(table.QualifiedName, ct).ConfigureAwait(false);
            foreach (var (partition, fingerprint) in wanted.OrderBy(w => w.Key, StringComparer.Ordinal))
            {
                if (have.TryGetValue(partition, out var f) && f == fingerprint) { continue; }
                await CopyPartitionAsync(table, partition, fingerprint, files.Where(x => x.Partition == partition).Select(x => x.Path).ToList(), ct).ConfigureAwait(false);
            }

            foreach (var gone in have.Keys.Where(k => !wanted.ContainsKey(k)))
            {
                await CopyPartitionAsync(table, gone, null, [], ct).ConfigureAwait(false);
            }
        }
    }

    private static List<(string Name, FieldType Type)> Columns(LakeTable table) =>
        [.. table.Columns.Select(c => (c.Name, c.Type)), .. table.IsPartitioned ? new[] { (table.PartitionKey, table.PartitionType) } : []];

    private async Task EnsureTableAsync(LakeTable table, CancellationToken ct)
    {
        var name = QuoteName(table.QualifiedName);
        await ExecAsync($"CREATE SCHEMA IF NOT EXISTS {Quote(table.Zone)}", null, ct).ConfigureAwait(false);
        await ExecAsync($"CREATE TABLE IF NOT EXISTS {name} ({string.Join(", ", Columns(table).Select(c => $"{Quote(c.Name)} {c.Type.PostgresType()}"))})", null, ct).ConfigureAwait(false);
        foreach (var c in Columns(table))
        {
            await ExecAsync($"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {Quote(c.Name)} {c.Type.PostgresType()}", null, ct).ConfigureAwait(false);
        }

        if (table.IsPartitioned)
        {
            await ExecAsync($"CREATE INDEX IF NOT EXISTS {Quote(table.Name + "_" + table.PartitionKey + "_idx")} ON {name} ({Quote(table.PartitionKey)})", null, ct).ConfigureAwait(false);
        }
    }

    private async Task<Dictionary<string, string>> CopiedAsync(string table, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT partition_value, fingerprint FROM sluice.source_partitions WHERE table_name = $1", connection);
        cmd.Parameters.AddWithValue(table);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) { map[r.GetString(0)] = r.GetString(1); }
        return map;
    }

    /// <summary>Replaces the rows of one partition by those of its files (none: the partition is removed).</summary>
    private async Task CopyPartitionAsync(LakeTable table, string partition, string? fingerprint, List<string> files, CancellationToken ct)
    {
        var name = QuoteName(table.QualifiedName);
        var csv = files.Count == 0 ? null : ExportCsv(table, partition, files);
        try
        {
            await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            var where = table.IsPartitioned ? $" WHERE {Quote(table.PartitionKey)} = CAST({Literal(partition)} AS {table.PartitionType.PostgresType()})" : "";
            await ExecAsync($"DELETE FROM {name}{where}", tx, ct).ConfigureAwait(false);
            if (csv is not null)
            {
                var list = string.Join(", ", Columns(table).Select(c => Quote(c.Name)));
                var writer = await connection.BeginTextImportAsync($"COPY {name} ({list}) FROM STDIN (FORMAT csv)", ct).ConfigureAwait(false);
                var ended = false;
                try
                {
                    using var reader = new StreamReader(csv, System.Text.Encoding.UTF8);
                    var buffer = new char[1 << 16];
                    int n;
                    while ((n = await reader.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                    {
                        await writer.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    }

                    await writer.FlushAsync(ct).ConfigureAwait(false);
                    // The COPY ended, and the server's answer read, asynchronously: the writer's own Dispose does both
                    // synchronously (a StreamWriter's DisposeAsync falls back to Dispose for a derived type), which on the
                    // socket thread waits for that very thread, for ever. CI: `sluice test sales-warehouse --servers`
                    // hung there again although a hop to the pool (LeaveSocketThreadAsync) came first: the stack showed
                    // the dispose still on the socket thread, straight from BeginTextImport's completion.
                    await writer.BaseStream.DisposeAsync().ConfigureAwait(false);
                    ended = true;
                }
                finally
                {
                    if (!ended)
                    {
                        // A failure on the way: the writer ends the COPY in its Dispose (synchronously, so off the socket
                        // thread first), and the transaction, never committed, takes nothing of it.
                        await Core.IO.InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
                        writer.Dispose();
                    }
                }
            }

            await using (var cmd = fingerprint is null
                ? new NpgsqlCommand("DELETE FROM sluice.source_partitions WHERE table_name = $1 AND partition_value = $2", connection, tx)
                : new NpgsqlCommand(
                    "INSERT INTO sluice.source_partitions(table_name, partition_value, fingerprint) VALUES ($1, $2, $3) " +
                    "ON CONFLICT (table_name, partition_value) DO UPDATE SET fingerprint = excluded.fingerprint", connection, tx))
            {
                cmd.Parameters.AddWithValue(table.QualifiedName);
                cmd.Parameters.AddWithValue(partition);
                if (fingerprint is not null) { cmd.Parameters.AddWithValue(fingerprint); }
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            await ExecAsync($"ANALYZE {name}", tx, ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            if (csv is not null) { File.Delete(csv); }
        }
    }

    /// <summary>The partition's rows as CSV (NULL as an empty field, an empty text as ""), as COPY reads it.</summary>
    private string ExportCsv(LakeTable table, string partition, List<string> files)
    {
        var tmp = Path.Combine(services.Data.Root, "tmp", "pg-mirror");
        Directory.CreateDirectory(tmp);
        var path = Path.Combine(tmp, $"{Guid.NewGuid():N}.csv");
        using var db = Sluice.Lake.DuckDb.OpenMemory(Path.Combine(services.Data.Root, "tmp", "duckdb"));
        var list = string.Join(", ", files.Select(Literal));
        var present = new HashSet<string>(StringComparer.Ordinal);
        using (var cmd = db.CreateCommand())
        {
            cmd.CommandText = $"DESCRIBE SELECT * FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true)";
            using var r = cmd.ExecuteReader();
            while (r.Read()) { present.Add(r.GetString(0)); }
        }

        var select = table.Columns.Select(c => !present.Contains(c.Name) ? "NULL"
            : c.Type == FieldType.String ? $"replace({Quote(c.Name)}, chr(0), '')" : Quote(c.Name)).ToList();
        if (table.IsPartitioned) { select.Add(Literal(partition)); }
        LakeQueryEngine.Exec(db,
            $"COPY (SELECT {string.Join(", ", select)} FROM read_parquet([{list}], hive_partitioning = false, union_by_name = true)) TO {Literal(path)} (FORMAT csv, HEADER false)");
        return path;
    }

    private async Task<int> ExecAsync(string sql, NpgsqlTransaction? tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    internal static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
