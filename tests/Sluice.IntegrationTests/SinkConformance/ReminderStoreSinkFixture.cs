using System.Globalization;
using System.Text.Json;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;
using Sluice.Recipes.Reminders.Pipeline;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// The <c>reminder_store</c> sink on its PostgreSQL store (a schema of its own on the shared server), behind the
/// <c>attorney_events</c> step it always follows: each suite row is an event pushed by a tenant (id as the case,
/// name as the event's id and type, qty as the confidence, note as the last action), read back from
/// <c>attorney_events</c>. An append store: every event once. Its transient failure is a proxy that drops connections.
/// </summary>
public sealed class ReminderStoreSinkFixture : SinkFixture
{
    private const string Tenant = "CLIENT-C";
    private readonly string _schema = "conf_rs_" + Guid.NewGuid().ToString("N")[..8];
    private readonly RecordMapping _mapping;
    private readonly ReminderStoreOptions _store;

    public ReminderStoreSinkFixture()
    {
        var recipe = Directory.CreateDirectory(Path.Combine(Engine.DataRoot, "recipe")).FullName;
        // The store file the sink type reads at load (MirrorOption), and the mapping of the suite's events.
        File.WriteAllText(Path.Combine(recipe, "store.yaml"), $"postgres:\n  schema: {_schema}\n");
        var mapping = Path.Combine(recipe, "items.yaml");
        File.WriteAllText(mapping, """
            name: items
            fields:
              source: {value: conformance}
              source_id: _id
              event_type: type
              occurred_at: at
              case_id: case_id
              client_id: client_id
              attorney_email: attorney_email
              status: status
              confidence_score: qty
              case_type: case_type
              last_action: note
            """);
        var errors = new ConfigErrors();
        _mapping = RecordMapping.Load(mapping, AttorneyEventModel.Schema, errors)!;
        errors.ThrowIfAny();
        _store = new ReminderStoreOptions { PostgresSchema = _schema, KeyEnv = "SLUICE_CONFORMANCE_UNSET_KEY", KeyFile = "keys/conformance.key" };
    }

    public override Engine Engine { get; } = new();

    public override SinkKind Kind => SinkKind.Append;

    public override ISinkType Type => new ReminderStoreSinkType();

    public override string MirrorOption => "store: store.yaml\nmode: mirror\n";

    /// <summary>A new step for each run: the pipeline disposes its steps when it ends.</summary>
    public override IReadOnlyList<IBatchStep> Steps => [new AttorneyEventsStep(Engine.Services, new AttorneyEventsStepOptions { Mapping = _mapping, Store = _store })];

    public override IBatchSink Create(ITransientFault? fault = null)
    {
        var server = PostgresConnectionOptions.FromEnvironment();
        if (fault is FlakyProxy proxy)
        {
            server = new PostgresConnectionOptions { Host = "127.0.0.1", Port = proxy.Port, User = server.User, Password = server.Password, Database = server.Database };
        }

        return new ReminderStoreSink(new PostgresReminderWarehouse(Engine.Services, _schema, PipelineRun.Recipe, server), $"events:{PipelineRun.Recipe}/{PipelineRun.Pipeline}");
    }

    /// <summary>The rows as the <c>http</c> source hands them over: the tenant, each event's JSON as received, arrival and landing offset.</summary>
    public override RecordBatch Batch(IReadOnlyList<Item> rows)
    {
        var schema = new TableSchema("items",
            [new("client_id", FieldType.String, true), new("_json", FieldType.String, true), new("received_at", FieldType.Timestamp, true), new("_offset", FieldType.Integer, true)]);
        var json = rows.Select(r => (string?)JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["_id"] = r.Name,
            ["type"] = r.Name,
            ["at"] = r.Time.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            ["case_id"] = r.Id.ToString(CultureInfo.InvariantCulture),
            ["client_id"] = Tenant,
            ["attorney_email"] = "ann@example.com",
            ["qty"] = r.Qty,
            ["note"] = r.Note,
        })).ToArray();
        return new RecordBatch(new ColumnBatch(schema,
        [
            rows.Select(_ => (string?)Tenant).ToArray(), json, rows.Select(r => (DateTime?)r.Time).ToArray(), rows.Select(r => (long?)r.Offset).ToArray(),
        ], rows.Count), rows[^1].Offset + Item.Span);
    }

    public override async Task<List<string>> ReadAsync()
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT case_id, event_type, confidence_score, last_action FROM {_schema}.attorney_events", connection);
        var rows = new List<string>();
        try
        {
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add($"id={reader.GetString(0)} name={reader.GetString(1)} qty={(long)reader.GetDouble(2)} note={(reader.IsDBNull(3) ? "" : reader.GetString(3))}");
            }
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return rows;
        }

        return rows.Order(StringComparer.Ordinal).ToList();
    }

    public override Task<ITransientFault> FaultAsync() => Task.FromResult<ITransientFault>(new FlakyProxy(ServerSettings.PgHost, ServerSettings.PgPort));

    protected override async Task CleanUpAsync()
    {
        await using var connection = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {_schema} CASCADE", connection);
        await cmd.ExecuteNonQueryAsync();
    }
}
