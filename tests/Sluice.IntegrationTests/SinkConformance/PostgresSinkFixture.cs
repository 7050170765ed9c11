using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>The <c>postgres</c> sink (keyed changes and mirror) in a schema of its own on the shared server; its transient failure is a proxy that drops connections.</summary>
public sealed class PostgresSinkFixture : SinkFixture, IMirrorFixture
{
    private readonly string _schema = "conf_" + Guid.NewGuid().ToString("N")[..8];

    /// <param name="time">The engine's clock (the sinks' prune pacing reads it); the system's by default.</param>
    public PostgresSinkFixture(TimeProvider? time) => Engine = new(time);

    public PostgresSinkFixture() : this(null) { }

    public override Engine Engine { get; }

    public override SinkKind Kind => SinkKind.Keyed;

    public override ISinkType Type => new PostgresSinkType();

    public override string MirrorOption => "schema: s\nmode: mirror\n";

    public override IBatchSink Create(ITransientFault? fault = null) => new PostgresSink(Engine.Services, new PostgresSinkOptions
    {
        Connection = Connection(fault),
        Schema = _schema,
        Keys = new Dictionary<string, IReadOnlyList<string>> { ["items"] = ["id"] },
    });

    public IBatchSink CreateMirror() => new PostgresSink(Engine.Services, new PostgresSinkOptions { Connection = Connection(null), Schema = _schema + "_m", Mirror = true });

    private static string Connection(ITransientFault? fault) => new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString)
    {
        Port = fault is FlakyProxy proxy ? proxy.Port : ServerSettings.PgPort,
        Host = fault is FlakyProxy ? "127.0.0.1" : ServerSettings.PgHost,
        Timeout = 5,
    }.ConnectionString;

    public override Task<List<string>> ReadAsync() => ReadAsync($"SELECT * FROM {_schema}.items", note: true);

    public Task<List<string>> ReadMirrorAsync() => ReadAsync($"SELECT id, name, qty FROM {_schema}_m.items", note: false);

    /// <summary>The mirror's tombstones of <c>items</c> as <c>key@lsn</c>, by lsn.</summary>
    public async Task<List<string>> ReadTombstonesAsync()
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT key::text || '@' || lsn FROM {_schema}_m.{PostgresMirror.DeletedTable} WHERE table_name = 'items' ORDER BY lsn, seq", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync()) { rows.Add(reader.GetString(0)); }
        return rows;
    }

    /// <summary>Nothing to fold: a delete removes the row (its tombstone stays), a truncate the table's rows.</summary>
    public Task FoldAsync() => Task.CompletedTask;

    private static async Task<List<string>> ReadAsync(string sql, bool note)
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(SinkRows.Text(Enumerable.Range(0, reader.FieldCount).Select(i => (reader.GetName(i), reader.IsDBNull(i) ? null : reader.GetValue(i))), note));
        }

        return rows.Order(StringComparer.Ordinal).ToList();
    }

    public override Task<ITransientFault> FaultAsync() => Task.FromResult<ITransientFault>(new FlakyProxy(ServerSettings.PgHost, ServerSettings.PgPort));

    protected override async Task CleanUpAsync()
    {
        await using (var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
        {
            await connection.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE; DROP SCHEMA IF EXISTS {_schema}_m CASCADE", connection);
            await cmd.ExecuteNonQueryAsync();
        }

    }
}
