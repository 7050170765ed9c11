using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Schema;

namespace Sluice.Connectors.ClickHouse;

public sealed class ClickHouseSinkType() : SinkType<ClickHouseOptions>("clickhouse")
{
    protected override ClickHouseOptions ParseOptions(ConfigMap map, RecipeContext recipe) => ClickHouseOptions.Parse(map);

    protected override IBatchSink Create(ClickHouseOptions options, string recipe, IEngineServices services) => new ClickHouseSink(services, options);

    protected override ChangeStreamUse ChangeStream(ClickHouseOptions options, ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(options.Name, options.Mirror ? "mode: mirror" : null, table => table == options.Table);
    }
}

/// <summary>
/// Writes one table of each batch into a ClickHouse ReplacingMergeTree over HTTP (RowBinary). The table is created
/// from the first batch's columns and gains a column when the batch does; a column of another type than the batch's
/// stops the sink with both types named, since RowBinary carries no types. Rows of a batch written twice collapse to
/// one for queries with <c>FINAL</c>. Failures that may pass (server down, timeouts) are retried with back-off until
/// they succeed or the pipeline stops; a request ClickHouse rejects as wrong stops the pipeline with its message.
/// With <c>mode: mirror</c> the table holds the current state of a source table instead (ClickHouseSink.Mirror.cs).
/// </summary>
public sealed partial class ClickHouseSink : IBatchSink, Core.Status.IStatusSink
{
    private readonly IEngineServices _services;
    private readonly ClickHouseOptions _options;
    private readonly ClickHouseClient _client;
    private readonly ILogger _log;
    private readonly TransientRetry _retry;
    private Dictionary<string, string>? _columns;

    /// <summary>The sorting key: <c>order_by</c>, or for a mirror the source table's key (known from its first batch).</summary>
    private IReadOnlyList<string> _orderBy;

    public ClickHouseSink(IEngineServices services, ClickHouseOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        _services = services;
        _options = options;
        _orderBy = options.OrderBy;
        _client = new ClickHouseClient(options.Url, options.Timeout);
        _prunes = new PruneSchedule(options.PruneEvery, services.Time);
        _log = services.Logging.CreateLogger("Sluice.ClickHouse");
        _retry = new TransientRetry($"clickhouse sink '{options.Name}'", options.Retry, services.Time, ClickHouseFailures.IsTransient)
        {
            Retrying = a =>
            {
                ClickHouseLog.Retrying(_log, _options.Table, a.Error.Message, a.Attempt, (long)a.Delay.TotalMilliseconds);
                _status?.Retrying(a.Attempt, a.Error.Message, _services.Time.GetUtcNow());
            },
            Recovered = attempts =>
            {
                ClickHouseLog.Recovered(_log, _options.Table, attempts);
                _status?.Recovered();
            },
        };
    }

    public string Name => _options.Name;

    public SinkJoining Joining => new(_options.InsertMaxRows, _options.InsertLinger);

    public string QualifiedTable => $"{ClickHouseClient.Quote(_options.Database)}.{ClickHouseClient.Quote(_options.Table)}";

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var table in batch.Tables)
        {
            if (table.Schema.Table != _options.Table || table.Count == 0) { continue; }
            if (_options.Mirror)
            {
                await WriteMirrorFencedAsync(table, batch.Fence, ct).ConfigureAwait(false);
                await PruneFlaggedAsync(batch.SettledBelow, ct).ConfigureAwait(false);
                continue;
            }

            await RetryAsync(() => EnsureTableAsync(table.Schema, ct), ct).ConfigureAwait(false);
            var fields = table.Schema.Fields;
            var holdable = Holdable(table);
            if (holdable.Count == 0) { continue; }
            await InsertAsync(QualifiedTable, holdable, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The rows ClickHouse can hold; the others go to the dead-letter store with the reason.</summary>
    private ColumnBatch Holdable(ColumnBatch table) =>
        UnholdableValues.Refuse(table, table.Schema.Fields.Select((f, c) => Unholdable(table, c)).ToList(), _orderBy, _services.DeadLetters, $"clickhouse:{_options.Name}");

    /// <summary>Inserts the rows as RowBinary into <paramref name="qualifiedTable"/>, whose columns have the types <see cref="TypeOf"/> gives.</summary>
    private async Task InsertAsync(string qualifiedTable, ColumnBatch rows, CancellationToken ct)
    {
        var fields = rows.Schema.Fields;
        var encoded = ClickHouseRowBinary.Encode(rows, fields.Select(f => NotNull(f.Name)).ToList(), fields.Select(f => f.Name == _options.Version).ToList(), _options.Mirror);
        await RetryAsync(() => _client.InsertAsync(qualifiedTable, fields.Select(f => f.Name), encoded.WrittenMemory, ct), ct).ConfigureAwait(false);
    }

    private Core.Status.SinkStatus? _status;

    /// <summary>Retries show in the status figures (attempt, last error) while they last.</summary>
    public void AttachStatus(Core.Status.SinkStatus status) => _status = status;

    /// <summary>One request, tried again while ClickHouse is away (<see cref="ClickHouseFailures"/>); a request it rejects as wrong stops the sink with its message.</summary>
    private async Task RetryAsync(Func<Task> action, CancellationToken ct)
    {
        try
        {
            await _retry.RunAsync(_ => action(), ct).ConfigureAwait(false);
        }
        catch (ClickHouseException e) when (!e.Transient)
        {
            throw new SluiceException($"clickhouse sink '{_options.Name}': {e.Message}", e);
        }
    }

    private async Task EnsureTableAsync(TableSchema schema, CancellationToken ct)
    {
        if (_columns is null)
        {
            var missingKeys = _orderBy.Append(_options.Version).Where(k => schema.IndexOf(k) < 0).ToList();
            if (missingKeys.Count > 0)
            {
                throw new SluiceException($"clickhouse sink '{_options.Name}': column{(missingKeys.Count > 1 ? "s" : "")} {string.Join(", ", missingKeys)} of order_by/version not in table '{schema.Table}' (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))}).");
            }

            if (schema.Fields[schema.IndexOf(_options.Version)].Type != FieldType.Integer)
            {
                throw new SluiceException($"clickhouse sink '{_options.Name}': the version column {_options.Version} must be a whole number (it is stored as UInt64), but it is {schema.Fields[schema.IndexOf(_options.Version)].Type.Name()}.");
            }

            await _client.QueryAsync($"CREATE DATABASE IF NOT EXISTS {ClickHouseClient.Quote(_options.Database)}", ct).ConfigureAwait(false);
            var columns = string.Join(", ", schema.Fields.Select(f => $"{ClickHouseClient.Quote(f.Name)} {TypeOf(f)}"));
            var partition = _options.PartitionBy is null ? "" : $" PARTITION BY {_options.PartitionBy}";
            await _client.QueryAsync(
                $"CREATE TABLE IF NOT EXISTS {QualifiedTable} ({columns}) ENGINE = ReplacingMergeTree({ClickHouseClient.Quote(_options.Version)}){partition} " +
                $"ORDER BY ({string.Join(", ", _orderBy.Select(ClickHouseClient.Quote))})", ct).ConfigureAwait(false);
            var existing = await _client.QueryAsync(
                $"SELECT name, type FROM system.columns WHERE database = {ClickHouseClient.Literal(_options.Database)} AND table = {ClickHouseClient.Literal(_options.Table)} FORMAT TabSeparated", ct).ConfigureAwait(false);
            _columns = existing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
            ClickHouseLog.TableReady(_log, $"{_options.Database}.{_options.Table}", string.Join(", ", _columns.Keys.Order(StringComparer.Ordinal)));
        }

        if (schema.Fields.FirstOrDefault(f => _columns.TryGetValue(f.Name, out var type) && type != TypeOf(f)) is { } changed)
        {
            throw new SluiceException($"clickhouse sink '{_options.Name}': column {changed.Name} of {_options.Database}.{_options.Table} is {_columns[changed.Name]}, but the batch's {changed.Name} is {changed.Type.Name()}, written as {TypeOf(changed)}; change the column's type (ALTER TABLE ... MODIFY COLUMN) or drop the table to have it created again.");
        }

        foreach (var field in schema.Fields.Where(f => !_columns.ContainsKey(f.Name)))
        {
            // 18.16 has no ADD COLUMN IF NOT EXISTS: a concurrent writer adding it first shows as "already exists", which is fine.
            try
            {
                await _client.QueryAsync($"ALTER TABLE {QualifiedTable} ADD COLUMN {ClickHouseClient.Quote(field.Name)} {TypeOf(field)}", ct).ConfigureAwait(false);
                ClickHouseLog.ColumnAdded(_log, $"{_options.Database}.{_options.Table}", field.Name);
            }
            catch (ClickHouseException e) when (e.Message.Contains("already exists", StringComparison.Ordinal))
            {
            }

            _columns[field.Name] = TypeOf(field);
        }
    }

    /// <summary>
    /// What ClickHouse 18.16 cannot hold in the column a field is stored as: a NaN or infinity in a Decimal; in a
    /// DateTime (UInt32 seconds) or Date (UInt16 days) anything before 1970 or after their last second or day, and
    /// the dates and times .NET cannot hold (infinity, a year after 9999, BC), which lie outside them too. A mirror
    /// stores dates and times exactly (<see cref="ClickHouseExactTime"/>): only a value past its Int64 or a text that is
    /// no date is refused there.
    /// </summary>
    private Func<int, string?>? Unholdable(ColumnBatch table, int column)
    {
        var field = table.Schema.Fields[column];
        var verbatim = table.Verbatim(column);
        switch (field.Type)
        {
            case FieldType.Decimal when field.IsDecimal128():
                var exact = table.Strings(column);
                return row => DecimalText.IsNotFinite(exact[row]) ? $"{TypeOf(field)} has no {exact[row]}" : null;
            case FieldType.Timestamp when _options.Mirror:
                if (verbatim is null) { return null; }
                var micros = (DateTime?[])table.Columns[column];
                return row => verbatim[row] is null || ClickHouseExactTime.TryMicros(micros[row], verbatim[row], out _)
                    ? null : "a mirror's Int64 of microseconds since 1970 ends in the year 294247";
            case FieldType.Date when _options.Mirror:
                if (verbatim is null) { return null; }
                var dated = (DateOnly?[])table.Columns[column];
                return row => verbatim[row] is null || ClickHouseExactTime.TryDays(dated[row], verbatim[row], out _) ? null : "not a Postgres date";
            case FieldType.Timestamp:
                var times = (DateTime?[])table.Columns[column];
                return row => verbatim?[row] is not null || times[row] is { } t && (t < DateTime.UnixEpoch || t >= ClickHouseRowBinary.DateTimeEnd)
                    ? "a ClickHouse DateTime holds 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC" : null;
            case FieldType.Date:
                var days = (DateOnly?[])table.Columns[column];
                return row => verbatim?[row] is not null || days[row] is { } d && (d < DateOnly.FromDateTime(DateTime.UnixEpoch) || d > ClickHouseRowBinary.DateEnd)
                    ? "a ClickHouse Date holds 1970-01-01 to 2149-06-06" : null;
            default:
                return null;
        }
    }

    private bool NotNull(string column) => column == _options.Version || _orderBy.Contains(column, StringComparer.Ordinal) || (_options.Mirror && MirrorNotNull(column));

    /// <summary>
    /// The ClickHouse type a field is stored as; <see cref="ClickHouseRowBinary"/> writes exactly these. A mirror keeps
    /// dates and times exactly (<see cref="ClickHouseExactTime"/>); a change log keeps DateTime and Date, as its tables
    /// were created with them.
    /// </summary>
    internal string TypeOf(FieldSpec field)
    {
        var type = field.Name == _options.Version ? "UInt64" : (_options.Mirror ? ClickHouseExactTime.TypeOf(field.Type) : null) ?? field.Type switch
        {
            FieldType.Integer => "Int64",
            FieldType.Double => "Float64",
            FieldType.Boolean => "UInt8",
            FieldType.Timestamp => "DateTime",
            FieldType.Date => "Date",
            FieldType.Decimal when field.IsDecimal128() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Decimal({field.Precision}, {field.Scale})"),
            _ => "String",
        };
        return NotNull(field.Name) ? type : $"Nullable({type})";
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
