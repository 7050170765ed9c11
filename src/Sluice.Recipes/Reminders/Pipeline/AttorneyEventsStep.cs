using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Mapping;

namespace Sluice.Recipes.Reminders.Pipeline;

/// <summary>
/// Options of the <c>attorney_events</c> step: which mapping turns the stream's events into attorney events, where
/// each event's JSON as received is (a text column of the incoming batch), and which column holds the tenant a token
/// vouched for. Validated at load.
/// </summary>
public sealed class AttorneyEventsStepOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly AttorneyEventsStepOptions Default = OptionDefaults.Of<AttorneyEventsStepOptions>();

    public required RecordMapping Mapping { get; init; }

    /// <summary>The store file (default <c>store.yaml</c>): its privacy settings protect what the step outputs.</summary>
    public required ReminderStoreOptions Store { get; init; }

    /// <summary>The text column holding each event's JSON as received (default <c>_json</c>).</summary>
    public string JsonColumn { get; init; } = "_json";

    /// <summary>The column holding the token's tenant, which becomes the event's client id (default <c>client_id</c>; none when the batch has no such column).</summary>
    public string TenantColumn { get; init; } = "client_id";

    public static AttorneyEventsStepOptions? Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        var file = map.RequiredString("mapping", doc: "The mapping file from the events' shape to attorney events, relative to the recipe.");
        var mapping = file.Length == 0 ? null : RecordMapping.Load(Path.Combine(recipe.Folder, file), AttorneyEventModel.Schema, recipe.Errors);
        var store = ReminderStoreOptions.FromKey(map, recipe, "The store file: its privacy settings protect what the step outputs.");
        var json = map.String("json_column", Default.JsonColumn, doc: "The text column holding each event's JSON as received.") ?? Default.JsonColumn;
        var tenant = map.String("tenant_column", Default.TenantColumn, doc: "The column holding the token's tenant, which becomes the event's client id.") ?? Default.TenantColumn;
        return mapping is null ? null : new AttorneyEventsStepOptions { Mapping = mapping, Store = store, JsonColumn = json, TenantColumn = tenant };
    }
}

/// <summary>The <c>attorney_events</c> step type.</summary>
public sealed class AttorneyEventsStepType : IStepType
{
    public string Name => "attorney_events";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(AttorneyEventsStepOptions.Parse(options, recipe));

    private sealed class Factory(AttorneyEventsStepOptions? options) : IStepFactory, IShapesBatches
    {
        public IBatchStep Create(IEngineServices services) =>
            new AttorneyEventsStep(services, options ?? throw new InvalidOperationException("the recipe did not validate"));

        /// <summary>The step reads the events' JSON from the first table holding <c>json_column</c> and outputs its own fixed tables, whatever it is given.</summary>
        public BatchShape Shape(BatchShape input, ShapeProblems problems)
        {
            if (options is not null && input.Other is null && input.Tables.All(t => t.Find(options.JsonColumn) is null))
            {
                problems.Add("json_column", $"attorney_events: no table has column '{options.JsonColumn}' at this point, so the events' JSON is not there (tables: {string.Join(", ", input.Tables.Select(t => t.Name))}); set the source's json_column");
            }

            return BatchShape.Of(AttorneyEventsStep.OutputTables);
        }
    }
}

/// <summary>
/// Maps the events of a pushed stream (their JSON as received, one per row) to attorney events and protects them,
/// exactly as the pull sources do: the output batch holds <c>source_event</c> (every event), <c>attorney_events</c>
/// (the mapped ones) and <see cref="RejectedTable"/> (the refused ones, for the sink to keep as dead letters in the
/// same transaction as the rest).
/// </summary>
public sealed class AttorneyEventsStep : IBatchStep, IDisposable
{
    public const string RejectedTable = "rejected_events";

    /// <summary>The landing offset of each <c>source_event</c> row, and of each <c>attorney_events</c> row (when the stream has offsets).</summary>
    public const string SourceOffsetsTable = "_source_offsets";

    public const string EventOffsetsTable = "_event_offsets";

    public static readonly IReadOnlyList<FieldSpec> RejectedColumns =
    [
        new("position", FieldType.String, true),
        new("reason", FieldType.String, true),
        new("payload", FieldType.String, true),
        new("_offset", FieldType.Integer, false),
    ];

    private static readonly IReadOnlyList<FieldSpec> OffsetColumns = [new("_offset", FieldType.Integer, false)];

    /// <summary>The tables of every batch the step outputs, in order.</summary>
    public static readonly IReadOnlyList<TableSchema> OutputTables =
    [
        new(ReminderTables.SourceEvent, ReminderTables.SourceEventColumns),
        new(ReminderTables.AttorneyEvents, ReminderTables.AttorneyEventColumns),
        new(RejectedTable, RejectedColumns),
        new(SourceOffsetsTable, OffsetColumns),
        new(EventOffsetsTable, OffsetColumns),
    ];

    private readonly IEngineServices _services;
    private readonly AttorneyEventsStepOptions _options;
    private readonly FieldProtector _protector;
    private readonly EventNormaliser _normaliser;

    public AttorneyEventsStep(IEngineServices services, AttorneyEventsStepOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _options = options;
        _protector = ReminderKeys.Load(options.Store, services.Data);
        _normaliser = new EventNormaliser(options.Mapping, _protector, options.Store.ClientId);
    }

    public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var table = batch.Tables.FirstOrDefault(t => t.Schema.IndexOf(_options.JsonColumn) >= 0)
            ?? throw new Core.SluiceException($"attorney_events: the batch has no column '{_options.JsonColumn}' holding the events' JSON (tables: {string.Join(", ", batch.Tables.Select(t => t.Schema.Table))}); set json_column.");
        var json = table.Strings(table.Schema.IndexOf(_options.JsonColumn));
        var tenantAt = table.Schema.IndexOf(_options.TenantColumn);
        var tenants = tenantAt >= 0 && table.Schema.Fields[tenantAt].Type == FieldType.String ? table.Strings(tenantAt) : null;
        var receivedAt = table.Schema.IndexOf("received_at") is var r and >= 0 && table.Schema.Fields[r].Type == FieldType.Timestamp ? table.Column<DateTime>(r) : null;
        var offsets = table.Schema.IndexOf("_offset") is var o and >= 0 && table.Schema.Fields[o].Type == FieldType.Integer ? table.Column<long>(o) : null;
        var now = _services.Time.GetUtcNow().UtcDateTime;
        var raw = new List<RawEvent>(table.Count);
        for (var i = 0; i < table.Count; i++)
        {
            var tenant = tenants?[i];
            var position = offsets?[i] is { } offset
                ? (tenant is null ? $"landing offset {offset}" : $"tenant {tenant}, landing offset {offset}")
                : $"batch ending at {batch.Position}, event {i + 1}";
            raw.Add(new RawEvent(System.Text.Encoding.UTF8.GetBytes(json[i] ?? ""), receivedAt?[i] ?? now, position, tenant));
        }

        var normalised = _normaliser.Normalise(raw);
        var rejected = new ColumnBatch(OutputTables[2],
        [
            normalised.Rejected.Select(x => (string?)x.Position).ToArray(),
            normalised.Rejected.Select(x => (string?)x.Reason).ToArray(),
            normalised.Rejected.Select(x => (string?)x.Payload).ToArray(),
            normalised.Rejected.Select(x => offsets?[x.Input]).ToArray(),
        ], normalised.Rejected.Count);
        // Offsets travel with the rows, so that a sink can skip the rows of a batch cut differently after a restart.
        var sourceOffsets = new ColumnBatch(OutputTables[3], [Enumerable.Range(0, table.Count).Select(i => offsets?[i]).ToArray()], table.Count);
        var eventOffsets = new ColumnBatch(OutputTables[4], [normalised.EventInputs.Select(i => offsets?[i]).ToArray()], normalised.Events.Count);
        return ValueTask.FromResult(new RecordBatch([normalised.SourceEvents, normalised.Events, rejected, sourceOffsets, eventOffsets], batch.Position));
    }

    public void Dispose() => _protector.Dispose();
}
