using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>
/// The PostgreSQL reminder store on a cluster: a worker paused inside its commit of a log's events (SIGSTOP, a frozen
/// VM) holds that log's advisory lock, which every other worker's commit of the log waits for. The server ends such a
/// transaction after the store's idle limit, so the next writer goes on, and the paused one stored nothing.
/// </summary>
public sealed class ReminderStoreIdleTransactionTests
{
    [Fact]
    public async Task A_commit_left_idle_inside_its_transaction_is_ended_by_the_server_and_the_next_writer_commits_the_same_events()
    {
        var schema = $"rridle_{Guid.NewGuid():N}"[..20];
        var recipe = $"idle-{Guid.NewGuid():N}"[..16];
        using var engine = new Engine();
        await using var paused = new PostgresReminderWarehouse(engine.Services, schema, recipe);
        await using var next = new PostgresReminderWarehouse(engine.Services, schema, recipe);
        await using var pg = NpgsqlDataSource.Create(ServerSettings.PostgresConnectionString);
        try
        {
            await paused.InitialiseAsync(CancellationToken.None);
            var events = LogSequences.Of("stream-a", [1, 2, 3]);
            using var wake = new ManualResetEventSlim();
            var inside = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // The batch is gathered once its commit holds the log's lock (its session is in a transaction): the paused
            // worker stops there, and its transaction sits idle.
            var first = Task.Run(() => paused.AppendOnceAsync(events, "sink", done =>
            {
                if (InTransaction(pg, recipe))
                {
                    inside.TrySetResult();
                    wake.Wait(TimeSpan.FromSeconds(90));
                }

                return Batch("paused");
            }, "letters", "cp", "paused", CancellationToken.None));
            await inside.Task.WaitAsync(TimeSpan.FromSeconds(30));

            var second = next.AppendOnceAsync(events, "sink", _ => Batch("next"), "letters", "cp", "next", CancellationToken.None);
            var limit = PostgresSinkOptions.IdleInTransactionTimeout + TimeSpan.FromSeconds(30);
            (await Task.WhenAny(second, Task.Delay(limit))).ShouldBe(second, $"the next writer still waits for the paused one's lock after {limit.TotalSeconds:0} s");
            (await second).ShouldBe(0, "none of the events was stored by the paused writer");

            wake.Set();
            var error = await Should.ThrowAsync<Exception>(first);
            error.ToString().ShouldContain("idle-in-transaction", Case.Insensitive, "the server ended the paused writer's transaction");
            (await next.ReadCheckpointAsync("cp", CancellationToken.None)).ShouldBe("next");
            (await Scalar(pg, $"SELECT string_agg(source, ',') FROM {schema}.source_event")).ShouldBe("next", "the events once, from the writer that went on");
        }
        finally
        {
            await using var drop = pg.CreateCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE");
            await drop.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Whether a session of the store (its application name) is inside a transaction now.</summary>
    private static bool InTransaction(NpgsqlDataSource pg, string recipe)
    {
        using var cmd = pg.CreateCommand("SELECT count(*) FROM pg_stat_activity WHERE application_name = @a AND xact_start IS NOT NULL");
        cmd.Parameters.AddWithValue("a", $"sluice {recipe}");
        return (long)cmd.ExecuteScalar()! > 0;
    }

    /// <summary>One source event from <paramref name="source"/>, no normalised events, no rejections.</summary>
    private static NormalisedBatch Batch(string source)
    {
        var raw = new ColumnBatchBuilder(new TableSchema(ReminderTables.SourceEvent, ReminderTables.SourceEventColumns), 1);
        ((TypedColumnBuilder<string>)raw[0]).Set(source);
        ((ValueColumnBuilder<DateTime>)raw[3]).Set(new DateTime(2026, 12, 7, 0, 0, 0, DateTimeKind.Utc));
        ((TypedColumnBuilder<string>)raw[4]).Set("stream-a:1");
        ((TypedColumnBuilder<string>)raw[5]).Set("{}");
        raw.CommitRow();
        return new NormalisedBatch(raw.Flush(), new ColumnBatchBuilder(new TableSchema(ReminderTables.AttorneyEvents, ReminderTables.AttorneyEventColumns), 1).Flush(), []);
    }

    private static async Task<object?> Scalar(NpgsqlDataSource pg, string sql)
    {
        await using var cmd = pg.CreateCommand(sql);
        return await cmd.ExecuteScalarAsync();
    }
}
