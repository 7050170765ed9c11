using System.Net.Sockets;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using Npgsql.Replication.PgOutput;
using NpgsqlTypes;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// The CDC reader's quiet linger (<see cref="PgReplicationSocket"/>) reaches the socket inside Npgsql by reflection: with
/// the pinned Npgsql it must be found (else the reader silently pays a wake-up per message again), and a change that
/// arrives while the socket is held must reach the reader once it is released.
/// </summary>
public sealed class PgReplicationSocketTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task The_replication_socket_is_found_held_and_released_and_a_change_sent_while_held_is_read_after()
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var database = $"sluice_sock_{id}";
        var pg = PostgresConnectionOptions.FromEnvironment().WithDatabase(database);
        await using var admin = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await admin.OpenAsync();
        await using (var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin)) { await create.ExecuteNonQueryAsync(); }
        try
        {
            await PgTestDatabase.ExecuteAsync(pg, "CREATE TABLE ticks (id bigserial PRIMARY KEY, note text NOT NULL)");
            await PgTestDatabase.ExecuteAsync(pg, $"CREATE PUBLICATION {database} FOR TABLE ticks");
            await PgTestDatabase.ExecuteAsync(pg, $"SELECT pg_create_logical_replication_slot('{database}', 'pgoutput')");

            await using var connection = new LogicalReplicationConnection(pg.ConnectionString("sluice-test-cdc"));
            await connection.Open();
            var socket = PgReplicationSocket.Of(connection);
            socket.ShouldNotBeNull("the socket of Npgsql's replication connection is reachable (Npgsql's connector still keeps it in _socket)");

            using var stop = new CancellationTokenSource(Patience);
            KeyValuePair<string, string?>[] plugin = [new("proto_version", "1"), new("publication_names", $"\"{database}\"")];
            var messages = connection.StartLogicalReplication(new PgOutputReplicationSlot(database), stop.Token, new NpgsqlLogSequenceNumber(0), plugin).GetAsyncEnumerator(stop.Token);
            // A read in flight, as when the reader sleeps out its linger; then a change arrives while the socket is held.
            var next = messages.MoveNextAsync().AsTask();
            try
            {
                socket.Hold();
                // The kernel caps the mark by the socket's buffer limits: what matters is that it is no longer one byte.
                LowWater(connection).ShouldBeGreaterThan(1);
                await PgTestDatabase.ExecuteAsync(pg, "INSERT INTO ticks (note) VALUES ('held')");
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (!next.IsCompleted && socket.Available == 0)
                {
                    clock.Elapsed.ShouldBeLessThan(Patience, "the change reaches the socket's buffer while held");
                    await Task.Delay(20);
                }

                socket.Release();
                LowWater(connection).ShouldBe(1);
                (await next.WaitAsync(Patience)).ShouldBeTrue("the read in flight completes once the socket is released");
                var first = new byte[1];
                (await messages.Current.Data.ReadAsync(first)).ShouldBe(1);
                ((char)first[0]).ShouldBe('B', "the first message after the release begins the transaction sent while held");
            }
            finally
            {
                // A read still in flight (the test failed before it ended) is cancelled and awaited before the enumerator
                // is disposed: Npgsql's enumerator must not be disposed under a pending read (PgChangeReader.FinishReadAsync).
                await stop.CancelAsync();
                try
                {
                    await next;
                    await messages.DisposeAsync();
                }
                catch (Exception)
                {
                    // Ended mid-stream by the cancellation: the connection is dropped with it below.
                }
            }
        }
        finally
        {
            await PgTestDatabase.DropAsync(admin, database, database);
        }
    }

    /// <summary>The socket's low-water mark as the kernel has it (read independently of the class under test).</summary>
    private static int LowWater(LogicalReplicationConnection connection)
    {
        const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic;
        var connector = typeof(ReplicationConnection).GetProperty("Connector", flags)!.GetValue(connection)!;
        var socket = (Socket)connector.GetType().GetField("_socket", flags)!.GetValue(connector)!;
        return (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveLowWater)!;
    }
}
