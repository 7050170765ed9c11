using Npgsql;
using Sluice.Core.Pipeline;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// The postgres sink's side of a batch's fence (<see cref="BatchFence"/>): the table <c>_sluice_partition_marks</c> in
/// the sink's schema holds, per checkpoint key (without the worker scope: one row for every worker) and partition, the newest fencing token that committed there and the
/// last stream sequence it wrote. Recorded in the batch's own transaction, so the rows and the mark commit together;
/// a batch read under an older token than the one recorded is refused and rolled back. The marks' row locks order a
/// stale owner's commit and the new owner's: whichever commits second sees the other's token.
/// </summary>
internal static class PgPartitionMarks
{
    public const string Table = "_sluice_partition_marks";

    /// <summary>
    /// Records the batch's marks, or throws <see cref="FencedBatchException"/> when a newer token of one of its
    /// partitions is recorded. Returns the marks table, which the caller counts as existing once the transaction committed.
    /// </summary>
    public static async Task<string> RecordAsync(NpgsqlConnection connection, string schema, string sink, string checkpointKey, BatchFence fence, IReadOnlySet<string> ready, CancellationToken ct)
    {
        var target = $"{PostgresSink.Quote(schema)}.{Table}";
        if (!ready.Contains(target))
        {
            await PostgresSink.ExecAsync(connection, $"SELECT pg_advisory_xact_lock(hashtext({PostgresSink.Literal(target)}))", ct).ConfigureAwait(false);
            await PostgresSink.ExecAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {PostgresSink.Quote(schema)}", ct).ConfigureAwait(false);
            await PostgresSink.ExecAsync(connection,
                $"CREATE TABLE IF NOT EXISTS {target} (checkpoint_key text NOT NULL, stream text NOT NULL, part integer NOT NULL, token bigint NOT NULL, sequence bigint NOT NULL, PRIMARY KEY (checkpoint_key, stream, part))", ct).ConfigureAwait(false);
        }

        foreach (var mark in fence.Marks.OrderBy(m => m.Stream, StringComparer.Ordinal).ThenBy(m => m.Partition))
        {
            var cmd = new NpgsqlCommand(
                $"INSERT INTO {target} AS m (checkpoint_key, stream, part, token, sequence) VALUES (@k, @s, @p, @t, @q) " +
                "ON CONFLICT (checkpoint_key, stream, part) DO UPDATE SET token = EXCLUDED.token, sequence = EXCLUDED.sequence WHERE m.token <= EXCLUDED.token RETURNING m.token", connection);
            await using (cmd.ConfigureAwait(false))
            {
                // Keyed without the worker: every worker's batches of a partition must meet the same mark, or none is fenced.
                cmd.Parameters.AddWithValue("k", WorkerCheckpointScope.Shared(checkpointKey));
                cmd.Parameters.AddWithValue("s", mark.Stream);
                cmd.Parameters.AddWithValue("p", mark.Partition);
                cmd.Parameters.AddWithValue("t", mark.Token);
                cmd.Parameters.AddWithValue("q", mark.Sequence);
                if (await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is null)
                {
                    throw new FencedBatchException(
                        $"{sink}: batch refused: partition {mark.Partition} of {mark.Stream} was taken over by another worker (a newer lease than this batch's token {mark.Token} committed in {target}); " +
                        "this worker lost the lease while it held the batch (paused or cut off longer than the lease), and nothing of the batch was written: its new owner writes these events");
                }
            }
        }

        return target;
    }
}
