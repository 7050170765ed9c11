using System.Globalization;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using static Sluice.Connectors.ClickHouse.ClickHouseClient;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// A mirror's fence in cluster mode (<see cref="BatchFence"/>): a worker that lost a partition's lease while it held a
/// batch (paused past the lease) must not write it over what the partition's new owner wrote. ClickHouse 18.16 has no
/// transactions, so the fence is in each statement: before a batch's statements the sink records its partitions'
/// fencing tokens in <c>&lt;table&gt;_sluice_marks</c>, and every statement that writes the mirror inserts nothing
/// unless, as it starts, no newer token of those partitions is recorded there. A statement of the old owner that
/// starts after the new owner recorded its token writes nothing, and the batch is refused
/// (<see cref="FencedBatchException"/>). What is left: a statement of the old owner that started before the new owner
/// recorded its token and still runs while the new owner writes the same keys (docs/SCALING.md, "Across batches, per key").
/// </summary>
public sealed partial class ClickHouseSink
{
    /// <summary>What each statement of the batch being written adds to its condition: nothing, or the fence.</summary>
    private string _unfenced = "";

    private bool _marksReady;

    /// <summary>The partitions' fencing tokens recorded by the mirror's writers: ReplacingMergeTree by token, so one row each after merges.</summary>
    private string MarksTable => $"{Quote(_options.Database)}.{Quote(_options.Table + "_sluice_marks")}";

    private async Task WriteMirrorFencedAsync(ColumnBatch table, BatchFence? fence, CancellationToken ct)
    {
        if (fence is null)
        {
            _unfenced = "";
            await WriteMirrorAsync(table, ct).ConfigureAwait(false);
            return;
        }

        if (!_marksReady)
        {
            await RetryAsync(() => _client.QueryAsync($"CREATE DATABASE IF NOT EXISTS {Quote(_options.Database)}", ct), ct).ConfigureAwait(false);
            await RetryAsync(() => _client.QueryAsync($"CREATE TABLE IF NOT EXISTS {MarksTable} (stream String, part Int32, token Int64) ENGINE = ReplacingMergeTree(token) ORDER BY (stream, part)", ct), ct).ConfigureAwait(false);
            _marksReady = true;
        }

        // Recorded first: a statement of an older owner that starts from now on writes nothing.
        var values = string.Join(", ", fence.Marks.Select(m => string.Create(CultureInfo.InvariantCulture, $"({Literal(m.Stream)}, {m.Partition}, {m.Token})")));
        await RetryAsync(() => _client.QueryAsync($"INSERT INTO {MarksTable} (stream, part, token) VALUES {values}", ct), ct).ConfigureAwait(false);
        var newer = string.Join(" OR ", fence.Marks.Select(m => string.Create(CultureInfo.InvariantCulture, $"(stream = {Literal(m.Stream)} AND part = {m.Partition} AND token > {m.Token})")));
        _unfenced = $" AND (SELECT count() FROM {MarksTable} WHERE {newer}) = 0";
        try
        {
            await WriteMirrorAsync(table, ct).ConfigureAwait(false);
        }
        finally
        {
            _unfenced = "";
        }

        // A statement that found a newer token wrote nothing: the batch is not this worker's any more, and is not acknowledged as written.
        var found = "";
        await RetryAsync(async () => found = await _client.QueryAsync($"SELECT stream, part, max(token) FROM {MarksTable} WHERE {newer} GROUP BY stream, part FORMAT TabSeparated", ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        if (found.Split('\n', StringSplitOptions.RemoveEmptyEntries) is { Length: > 0 } taken)
        {
            var first = taken[0].Split('\t');
            throw new FencedBatchException(
                $"clickhouse sink '{_options.Name}': partition {first[1]} of JetStream stream {first[0]} was taken over by another worker (token {first[2]}) since this batch was read; the mirror's statements after that wrote nothing of it");
        }
    }
}
