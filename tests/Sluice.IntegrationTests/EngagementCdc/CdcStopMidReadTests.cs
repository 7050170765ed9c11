using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// Stopping a CDC source at any moment, however often, while the server keeps sending: the replication read in flight
/// is never abandoned, overlapped or disposed under its feet (Npgsql's replication enumerator is not safe for that, and
/// its fault surfaces on a thread-pool thread, killing the process), and nothing acknowledged or not is lost.
/// </summary>
public sealed class CdcStopMidReadTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120); // a process start alone took 55 s at load 100

    [Fact]
    public async Task A_source_stopped_or_disposed_mid_read_over_and_over_ends_cleanly_and_a_restart_delivers_every_row()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var database = $"sluice_stop_{id}";
        var pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(database);
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using (var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin)) { await create.ExecuteNonQueryAsync(); }
        try
        {
            await PgTestDatabase.ExecuteAsync(pg, "CREATE TABLE ticks (id bigserial PRIMARY KEY, note text NOT NULL)");
            var options = new PostgresCdcOptions
            {
                Connection = pg,
                Publication = database,
                Slot = database,
                Tables = [new CdcTableRule(PgTablePattern.Parse("ticks", out _)!, ChangePolicy.Emit, ChangePolicy.Emit)],
                Snapshot = false,
                StatusInterval = TimeSpan.FromMilliseconds(100),
            };
            using var engine = new Engine();
            long? resume = null;
            // The slot first (snapshot: false): every row the writer inserts is after it, so every row must arrive.
            await using (var first = new PostgresCdcSource(engine.Services, "stop-test", options))
            {
                await foreach (var created in first.ReadAsync(null, CancellationToken.None))
                {
                    resume = created.Position;
                    break;
                }
            }

            using var writing = new CancellationTokenSource();
            // Small transactions back to back: the reader keeps up, so a stop mostly finds it lingering with a read pending.
            var writer = Task.Run(async () =>
            {
                await using var connection = new NpgsqlConnection(pg.ConnectionString("sluice-test"));
                await connection.OpenAsync();
                await using var insert = new NpgsqlCommand("INSERT INTO ticks (note) SELECT 'tick' FROM generate_series(1, 3)", connection);
                while (!writing.IsCancellationRequested)
                {
                    await insert.ExecuteNonQueryAsync();
                    await Task.Delay(2);
                }
            });

            var seen = new HashSet<long>();
            var random = new Random(15);
            for (var round = 0; round < 40; round++)
            {
                // Even rounds cancel the read, odd ones dispose the enumerator at a batch (as a pipeline stop does either way).
                resume = await ReadThenStopAsync(engine, options, resume, seen, TimeSpan.FromMilliseconds(random.Next(0, 150)), cancel: round % 2 == 0);
            }

            await writing.CancelAsync();
            await writer;
            var last = await PgTestDatabase.ScalarAsync<long>(pg, "SELECT max(id) FROM ticks");
            await using (var source = new PostgresCdcSource(engine.Services, "stop-test", options))
            using (var reading = new CancellationTokenSource(Patience))
            {
                try
                {
                    await foreach (var batch in source.ReadAsync(resume, reading.Token))
                    {
                        Collect(batch, seen);
                        await source.AcknowledgeAsync(batch.Position, CancellationToken.None);
                        if (seen.Count >= last) { break; }
                    }
                }
                catch (OperationCanceledException) when (reading.IsCancellationRequested)
                {
                    // Not all arrived in time: the assertion below names the missing ones.
                }
            }

            var missing = Enumerable.Range(1, (int)last).Where(i => !seen.Contains(i)).ToList();
            missing.ShouldBeEmpty($"every row inserted while the source was stopped and started 40 times arrives; {missing.Count} of {last} missing, the first {string.Join(", ", missing.Take(10))}");
            seen.Max().ShouldBe(last);
        }
        finally
        {
            await PgTestDatabase.DropAsync(admin, database, database);
        }
    }

    /// <summary>Starts a source, reads (acknowledging each batch) for <paramref name="after"/>, stops it; returns where to resume.</summary>
    private static async Task<long?> ReadThenStopAsync(Engine engine, PostgresCdcOptions options, long? resume, HashSet<long> seen, TimeSpan after, bool cancel)
    {
        var source = new PostgresCdcSource(engine.Services, "stop-test", options);
        await using var _ = source;
        using var stop = new CancellationTokenSource();
        var enumerator = source.ReadAsync(resume, stop.Token).GetAsyncEnumerator(stop.Token);
        var acked = resume;
        var reading = Task.Run(async () =>
        {
            var started = DateTimeOffset.UtcNow;
            while (await enumerator.MoveNextAsync())
            {
                var batch = enumerator.Current;
                Collect(batch, seen);
                await source.AcknowledgeAsync(batch.Position, CancellationToken.None);
                acked = batch.Position;
                if (!cancel && batch.Tables.Count > 0 && DateTimeOffset.UtcNow - started >= after) { return; }
            }
        });
        if (cancel)
        {
            await Task.Delay(after);
            await stop.CancelAsync();
        }

        try
        {
            await reading.WaitAsync(Patience);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        // Disposing ends the replication read in flight (the reader lingers with one pending nearly always).
        await enumerator.DisposeAsync().AsTask().WaitAsync(Patience);
        return acked;
    }

    private static void Collect(RecordBatch batch, HashSet<long> seen)
    {
        foreach (var table in batch.Tables)
        {
            if (table.Schema.Table != "ticks") { continue; }
            var ids = table.Column<long>(table.Schema.IndexOf("id"));
            for (var i = 0; i < table.Count; i++) { seen.Add(ids[i]!.Value); }
        }
    }
}
