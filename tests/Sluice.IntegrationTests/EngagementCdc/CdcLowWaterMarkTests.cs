using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// The low-water mark a <c>postgres_cdc</c> source gives its batches (<see cref="RecordBatch.SettledBelow"/>), which a
/// mirror prunes its tombstones below: no change below it ever comes again, in the same run or after a restart that
/// replays what was not acknowledged (docs/SCALING.md, "Tombstones and the low-water mark"). Real logical replication.
/// </summary>
public sealed class CdcLowWaterMarkTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(180);

    // One transaction each; the first three are acknowledged, the last three are read and never acknowledged (a crash
    // before the sinks' checkpoints), so a restart reads them again.
    private static readonly (string Sql, string Last)[] Transactions =
    [
        ("INSERT INTO items VALUES (1, 0), (2, 0), (3, 0)", "c3"),
        ("DELETE FROM items WHERE id = 1", "d1"),
        ("UPDATE items SET step = 2 WHERE id = 2", "u2"),
        ("DELETE FROM items WHERE id = 2", "d2"),
        ("INSERT INTO items VALUES (4, 4)", "c4"),
        ("DELETE FROM items WHERE id = 3", "d3"),
    ];

    [Fact]
    public async Task No_change_below_the_mark_comes_again_and_the_mark_passes_what_was_acknowledged()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var database = $"sluice_mark_{id}";
        var pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(database);
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using (var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin)) { await create.ExecuteNonQueryAsync(); }
        try
        {
            await PgTestDatabase.ExecuteAsync(pg, "CREATE TABLE items (id int PRIMARY KEY, step int NOT NULL)");
            var options = new PostgresCdcOptions
            {
                Connection = pg,
                Publication = database,
                Slot = database,
                Tables = [new CdcTableRule(PgTablePattern.Parse("items", out _)!, ChangePolicy.Emit, ChangePolicy.Emit)],
                Snapshot = false,
                StatusInterval = TimeSpan.FromMilliseconds(100),
            };
            using var engine = new Engine();
            long resume = 0;
            // Not bounded by the test's patience: creating a slot waits for every transaction running on the server to end.
            await using (var first = new PostgresCdcSource(engine.Services, "mark-test", options))
            {
                await foreach (var created in first.ReadAsync(null, CancellationToken.None))
                {
                    resume = created.Position;
                    break;
                }
            }

            using var patience = new CancellationTokenSource(Patience);

            var positions = new Dictionary<string, long>(StringComparer.Ordinal);
            long mark = 0;
            await using (var source = new PostgresCdcSource(engine.Services, "mark-test", options))
            {
                var reading = source.ReadAsync(resume, patience.Token).GetAsyncEnumerator(patience.Token);
                try
                {
                    for (var t = 0; t < Transactions.Length; t++)
                    {
                        await PgTestDatabase.ExecuteAsync(pg, Transactions[t].Sql);
                        while (!positions.ContainsKey(Transactions[t].Last))
                        {
                            (await reading.MoveNextAsync()).ShouldBeTrue();
                            var batch = reading.Current;
                            Collect(batch, positions, mark: null);
                            mark = Math.Max(mark, batch.SettledBelow ?? 0);
                            if (t < 3)
                            {
                                await source.AcknowledgeAsync(batch.Position, CancellationToken.None);
                                resume = batch.Position;
                            }
                        }
                    }
                }
                finally
                {
                    await reading.DisposeAsync();
                }
            }

            mark.ShouldBeGreaterThan(positions["u2"], "the mark passed what every sink acknowledged (the deleted key 1's tombstone could go)");
            mark.ShouldBeLessThanOrEqualTo(positions["d2"], "the first change not acknowledged is at or above it");

            // A restart from the acknowledged position (the sinks' checkpoints): what was not acknowledged comes again, all
            // of it at or above the mark.
            var again = new Dictionary<string, long>(StringComparer.Ordinal);
            await using (var source = new PostgresCdcSource(engine.Services, "mark-test", options))
            {
                await foreach (var batch in source.ReadAsync(resume, patience.Token))
                {
                    Collect(batch, again, mark);
                    if (again.ContainsKey("d3")) { break; }
                }
            }

            again.Keys.ShouldContain("d2", "the changes not acknowledged are read again");
            again.Values.Min().ShouldBeGreaterThanOrEqualTo(mark, "no change below the mark comes again");
        }
        finally
        {
            await PgTestDatabase.DropAsync(admin, database, database);
        }
    }

    /// <summary>Records each change as op and id (<c>d1</c>) with its <c>_lsn</c>; with <paramref name="mark"/>, checks each is at or above it, and the batch's own mark too.</summary>
    private static void Collect(RecordBatch batch, Dictionary<string, long> positions, long? mark)
    {
        foreach (var table in batch.Tables.Where(t => t.Schema.Table == "items"))
        {
            var (ids, ops, lsns) = (table.Column<long>(table.Schema.IndexOf("id")), table.Strings(table.Schema.IndexOf(ChangeEnvelope.Op)), table.Column<long>(table.Schema.IndexOf(ChangeEnvelope.Lsn)));
            for (var row = 0; row < table.Count; row++)
            {
                var lsn = lsns[row]!.Value;
                lsn.ShouldBeGreaterThanOrEqualTo(batch.SettledBelow ?? 0, "a batch's changes are at or above its own mark");
                if (mark is { } m) { lsn.ShouldBeGreaterThanOrEqualTo(m, "a change read again is at or above the mark seen before"); }
                positions[ops[row] + ids[row]] = lsn;
            }
        }
    }
}
