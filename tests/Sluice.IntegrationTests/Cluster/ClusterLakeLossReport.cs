using System.Globalization;
using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using Npgsql;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// For a CDC-into-the-lake test whose lake lacks changes: where each of the stream's sequences is (in the lake, still in
/// JetStream, recorded as committed by the lake sink, or none of these: acknowledged without a row), and what the
/// missing rows are in postgres. A failing test's message, so one failure on CI says where the changes went.
/// </summary>
internal static class ClusterLakeLossReport
{
    /// <param name="lakeRows">The lake's <c>event_id,_offset,_lsn,_seq</c> rows (CSV with a header), as the test reads them.</param>
    public static async Task<string> WriteAsync(CdcScenario scenario, NatsTestCluster nats, string cluster, string lakeRows)
    {
        var report = new StringBuilder();
        try
        {
            var lake = lakeRows.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(l => l.Split(','))
                .Select(v => (Id: long.Parse(v[0], CultureInfo.InvariantCulture), Offset: Long(v[1]), Lsn: Long(v[2]), Seq: Long(v[3])))
                .ToList();
            var inLakeIds = lake.Select(r => r.Id).ToHashSet();
            var inLakeSequences = lake.Where(r => r.Offset is not null).Select(r => r.Offset!.Value).ToHashSet();
            var pg = new List<(long Id, long Xmin)>();
            await using (var connection = new NpgsqlConnection(scenario.Pg.ConnectionString("sluice-test")))
            {
                await connection.OpenAsync();
                await using var cmd = new NpgsqlCommand("SELECT event_id, xmin::text::bigint FROM engagement_events ORDER BY 1", connection);
                await using var r = await cmd.ExecuteReaderAsync();
                while (await r.ReadAsync()) { pg.Add((r.GetInt64(0), r.GetInt64(1))); }
            }

            var missing = pg.Where(p => !inLakeIds.Contains(p.Id)).ToList();
            report.AppendLine(CultureInfo.InvariantCulture, $"loss report: {missing.Count} of postgres's {pg.Count} rows not in the lake ({lake.Count} lake rows, {inLakeIds.Count} distinct)");
            foreach (var tx in missing.GroupBy(m => m.Xmin).Take(10))
            {
                var all = pg.Count(p => p.Xmin == tx.Key);
                var first = tx.Min(m => m.Id);
                var before = lake.Where(l => l.Id < first).OrderByDescending(l => l.Id).FirstOrDefault();
                var after = lake.Where(l => l.Id > tx.Max(m => m.Id)).OrderBy(l => l.Id).FirstOrDefault();
                report.AppendLine(CultureInfo.InvariantCulture,
                    $"  transaction {tx.Key}: {tx.Count()} of its {all} rows missing (event ids {first}..{tx.Max(m => m.Id)}); the lake's row before: id {before.Id} offset {before.Offset} lsn {before.Lsn:x} seq {before.Seq}; after: id {after.Id} offset {after.Offset} lsn {after.Lsn:x} seq {after.Seq}");
            }

            var committed = new List<(string Sink, string Log, long First, long Last)>();
            await using (var meta = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
            {
                await meta.OpenAsync();
                await using var cmd = new NpgsqlCommand($"SELECT sink, log, first_seq, last_seq FROM sluice_meta_{cluster}.lake_log_commits ORDER BY first_seq", meta);
                await using var r = await cmd.ExecuteReaderAsync();
                while (await r.ReadAsync()) { committed.Add((r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3))); }
            }

            report.AppendLine(CultureInfo.InvariantCulture, $"lake_log_commits: {committed.Count} ranges over {committed.Select(c => c.Log).Distinct().Count()} log(s): {string.Join(' ', committed.Select(c => $"{c.First}-{c.Last}"))}");
            bool Recorded(long s) => committed.Any(c => c.First <= s && s <= c.Last);

            await using var connectionNats = new NatsConnection(new NatsOpts { Url = nats.Urls, RequestTimeout = TimeSpan.FromSeconds(10) });
            var js = connectionNats.CreateJetStreamContext();
            await foreach (var name in js.ListStreamNamesAsync())
            {
                if (!name.Contains(cluster, StringComparison.OrdinalIgnoreCase)) { continue; }
                var stream = await js.GetStreamAsync(name);
                var state = stream.Info.State;
                report.AppendLine(CultureInfo.InvariantCulture, $"stream {name}: {state.Messages} messages, first {state.FirstSeq}, last {state.LastSeq}");
                var inStream = new Dictionary<long, string>();
                for (var s = (long)state.FirstSeq; s <= (long)state.LastSeq && s > 0; s++)
                {
                    try
                    {
                        var got = await stream.GetAsync(new StreamMsgGetRequest { Seq = (ulong)s });
                        var data = got.Message.Data.ToArray();
                        inStream[s] = Encoding.UTF8.GetString(data);
                    }
                    catch (NatsJSApiException)
                    {
                        // Acknowledged and deleted (a work queue).
                    }
                }

                var missingIdText = missing.Select(m => m.Id.ToString(CultureInfo.InvariantCulture)).ToList();
                var lost = new List<long>();
                var recordedNoRow = new List<long>();
                var waiting = new List<long>();
                for (var s = 1L; s <= (long)state.LastSeq; s++)
                {
                    if (inStream.ContainsKey(s)) { waiting.Add(s); }
                    if (inLakeSequences.Contains(s)) { continue; }
                    if (Recorded(s)) { recordedNoRow.Add(s); }
                    else if (!inStream.ContainsKey(s)) { lost.Add(s); }
                }

                report.AppendLine(CultureInfo.InvariantCulture, $"  sequences in the lake: {inLakeSequences.Count}; still in the stream: {Runs(waiting)}");
                report.AppendLine(CultureInfo.InvariantCulture, $"  recorded committed with no row in the lake: {Runs(recordedNoRow)}");
                report.AppendLine(CultureInfo.InvariantCulture, $"  neither in the lake nor in the stream nor recorded (acknowledged without a row): {Runs(lost)}");
                foreach (var (s, text) in inStream.Take(5)) { report.AppendLine(CultureInfo.InvariantCulture, $"  stream message {s}: {text[..Math.Min(300, text.Length)]}"); }
                var waitingMissing = inStream.Where(kv => missingIdText.Any(id => kv.Value.Contains("," + id + ",", StringComparison.Ordinal) || kv.Value.Contains("[" + id + ",", StringComparison.Ordinal))).Select(kv => kv.Key).ToList();
                report.AppendLine(CultureInfo.InvariantCulture, $"  stream messages that hold a missing event id: {Runs(waitingMissing)}");
            }

            report.AppendLine(await nats.ConsumersAsync());
        }
        catch (Exception e)
        {
            report.AppendLine("loss report failed: " + e);
        }

        return report.ToString();

        static long? Long(string v) => long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : null;
    }

    private static string Runs(List<long> sequences)
    {
        if (sequences.Count == 0) { return "none"; }
        var runs = Sluice.Core.Pipeline.SequenceRange.Runs(sequences);
        var text = string.Join(' ', runs.Take(40).Select(r => r.First == r.Last ? r.First.ToString(CultureInfo.InvariantCulture) : $"{r.First}-{r.Last}"));
        return $"{sequences.Count} ({text}{(runs.Count > 40 ? " ..." : "")})";
    }
}
