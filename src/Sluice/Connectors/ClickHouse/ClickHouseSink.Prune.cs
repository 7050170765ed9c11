using System.Globalization;
using Sluice.Core.Pipeline;
using static Sluice.Connectors.ClickHouse.ClickHouseClient;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// A mirror's flagged rows below the source's low-water mark (<see cref="Core.Pipeline.RecordBatch.SettledBelow"/>):
/// a key's flagged row at <c>_lsn</c> p hides its older rows and refuses its changes at or below p; once no change with
/// <c>_lsn</c> below the mark can reach the sink any more, a key whose newest row is such a flag below the mark needs
/// none of its rows. 18.16 removes rows only with a mutation (<c>ALTER TABLE ... DELETE</c>), which rewrites the parts
/// it touches in the background; so one is started at most every <see cref="ClickHouseOptions.PruneEvery"/>, only when
/// there are flagged rows below the mark, and never while the table's last one still runs (docs/CDC.md, "ClickHouse").
/// </summary>
/// <remarks>
/// Every row of such a key goes, not only its flag: without the flag its older live rows would be read again. A
/// mutation applies to the parts that exist when it starts; a key written again after that (an insert above the mark)
/// is in a new part it does not touch, and once written it is no longer a key whose newest row is a flag, so it is not
/// picked either way.
/// </remarks>
public sealed partial class ClickHouseSink
{
    private readonly PruneSchedule _prunes;

    /// <summary>
    /// Starts the mutation that removes the keys whose newest row is a flag below <paramref name="mark"/>, when one is due
    /// and there is something to remove. A failure only keeps the rows longer: it is logged, and the next one due tries again.
    /// </summary>
    private async Task PruneFlaggedAsync(long? settled, CancellationToken ct)
    {
        if (settled is not { } mark || _orderBy.Count == 0 || !_prunes.Due(_options.Table, mark)) { return; }
        var (database, table) = (Literal(_options.Database), Literal(_options.Table));
        var lsn = Quote(Core.Schema.ChangeEnvelope.Lsn);
        var below = string.Create(CultureInfo.InvariantCulture, $"{Quote(Deleted)} = 1 AND {lsn} < {mark}");
        try
        {
            var running = await _client.QueryAsync($"SELECT count() FROM system.mutations WHERE database = {database} AND table = {table} AND is_done = 0 FORMAT TabSeparated", ct).ConfigureAwait(false);
            if (long.Parse(running.Trim(), CultureInfo.InvariantCulture) > 0) { return; }
            var flagged = long.Parse((await _client.QueryAsync($"SELECT count() FROM {QualifiedTable} WHERE {below} FORMAT TabSeparated", ct).ConfigureAwait(false)).Trim(), CultureInfo.InvariantCulture);
            if (flagged == 0) { return; }
            var keys = string.Join(", ", _orderBy.Select(Quote));
            await _client.QueryAsync($"ALTER TABLE {QualifiedTable} DELETE WHERE ({keys}) IN (SELECT {keys} FROM {QualifiedTable} FINAL WHERE {below})", ct).ConfigureAwait(false);
            ClickHouseLog.PruningFlagged(_log, _options.Table, flagged, mark);
        }
        catch (Exception e) when (e is ClickHouseException or FormatException && !ct.IsCancellationRequested)
        {
            ClickHouseLog.PruneFailed(_log, _options.Table, e.Message);
        }
    }
}
