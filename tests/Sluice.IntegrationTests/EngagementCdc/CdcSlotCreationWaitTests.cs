using Npgsql;
using Npgsql.Replication;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// A replication slot's creation waits for every transaction that had written on the server when it began (issue 18:
/// a cluster's slot holder waited minutes, saying nothing, on another process's open COPY): while it waits, the
/// sessions holding it are named in a warning, and the creation ends once they do.
/// </summary>
public sealed class CdcSlotCreationWaitTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_slot_creation_held_by_an_open_transaction_names_its_session_and_ends_once_it_commits()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var database = $"sluice_slotwait_{id}";
        var slot = database;
        var pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(database);
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using (var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin)) { await create.ExecuteNonQueryAsync(); }
        try
        {
            await PgTestDatabase.ExecuteAsync(pg, "CREATE TABLE t (id int PRIMARY KEY)");
            // A transaction that wrote (so it has a transaction id) and stays open: the creation cannot end before it does.
            await using var holder = await ServerSettings.OpenPostgresAsync(pg.ConnectionString("sluice-test-holder"));
            await using var open = await holder.BeginTransactionAsync();
            await using (var insert = new NpgsqlCommand("INSERT INTO t VALUES (1)", holder, open)) { await insert.ExecuteNonQueryAsync(); }

            var logs = new CapturingLogs();
            var replication = new LogicalReplicationConnection(pg.ConnectionString("sluice-test-cdc"));
            await using var _ = replication;
            await replication.Open();
            using var bounded = new CancellationTokenSource(Patience * 2);
            var creating = replication.CreatePgOutputReplicationSlot(slot, temporarySlot: true, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.NoExport, cancellationToken: bounded.Token);
            var wait = new PgSlotCreationWait(pg, slot, logs.CreateLogger("test"), TimeProvider.System) { FirstLook = TimeSpan.FromSeconds(1), LookEvery = TimeSpan.FromSeconds(1) };
            var watching = wait.WatchAsync(creating, replication.ProcessID, bounded.Token);

            var named = $"pid {holder.ProcessID} (database {database}, application 'sluice-test-holder', idle in transaction";
            var deadline = DateTime.UtcNow + Patience;
            while (!logs.Text.Contains(named, StringComparison.Ordinal))
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, $"the warning names the open transaction's session; logged:\n{logs.Text}");
                await Task.Delay(100);
            }

            logs.Text.ShouldContain($"Replication slot {slot}: creating it has waited");
            watching.IsCompleted.ShouldBeFalse("the slot cannot be created while a transaction that wrote before it is open");

            await open.CommitAsync();
            var created = await watching.WaitAsync(Patience);
            created.Name.ShouldBe(slot);
        }
        finally
        {
            await PgTestDatabase.DropAsync(admin, slot, database);
        }
    }
}
