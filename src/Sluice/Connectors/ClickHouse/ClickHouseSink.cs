using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Connectors.ClickHouse;

public sealed class ClickHouseSinkType : ISinkType
{
    public string Name => "clickhouse";

    public ISinkFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(ClickHouseOptions.Parse(options));

    private sealed class Factory(ClickHouseOptions options) : ISinkFactory
    {
        public IBatchSink Create(IEngineServices services) => new ClickHouseSink(services, options);
    }
}

/// <summary>
/// Writes one table of each batch into a ClickHouse ReplacingMergeTree over HTTP (JSONEachRow). The table is created
/// from the first batch's columns and gains a column when the batch does. Rows of a batch written twice collapse to
/// one for queries with <c>FINAL</c>. Failures that may pass (server down, timeouts) are retried with back-off until
/// they succeed or the pipeline stops; a request ClickHouse rejects as wrong stops the pipeline with its message.
/// </summary>
public sealed class ClickHouseSink : IBatchSink
{
    private readonly IEngineServices _services;
    private readonly ClickHouseOptions _options;
    private readonly ClickHouseClient _client;
    private readonly ILogger _log;
    private HashSet<string>? _columns;

    public ClickHouseSink(IEngineServices services, ClickHouseOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        _services = services;
        _options = options;
        _client = new ClickHouseClient(options.Url, options.Timeout);
        _log = services.Logging.CreateLogger("Sluice.ClickHouse");
    }

    public string Name => _options.Name;

    public string QualifiedTable => $"{ClickHouseClient.Quote(_options.Database)}.{ClickHouseClient.Quote(_options.Table)}";

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var table in batch.Tables)
        {
            if (table.Schema.Table != _options.Table || table.Count == 0) { continue; }
            await RetryAsync(() => EnsureTableAsync(table.Schema, ct), ct).ConfigureAwait(false);
            var rows = Encode(table);
            await RetryAsync(() => _client.InsertAsync(QualifiedTable, table.Schema.Fields.Select(f => f.Name), rows.WrittenMemory, ct), ct).ConfigureAwait(false);
        }
    }

    private async Task RetryAsync(Func<Task> action, CancellationToken ct)
    {
        var delay = _options.RetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await action().ConfigureAwait(false);
                if (attempt > 1) { ClickHouseLog.Recovered(_log, _options.Table, attempt); }
                return;
            }
            catch (ClickHouseException e) when (e.Transient)
            {
                ClickHouseLog.Retrying(_log, _options.Table, e.Message, attempt, (long)delay.TotalMilliseconds);
                await Task.Delay(delay, _services.Time, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.RetryMaxDelay.Ticks));
            }
            catch (ClickHouseException e)
            {
                throw new SluiceException($"clickhouse sink '{_options.Name}': {e.Message}", e);
            }
        }
    }

    private async Task EnsureTableAsync(TableSchema schema, CancellationToken ct)
    {
        if (_columns is null)
        {
            var missingKeys = _options.OrderBy.Append(_options.Version).Where(k => schema.IndexOf(k) < 0).ToList();
            if (missingKeys.Count > 0)
            {
                throw new SluiceException($"clickhouse sink '{_options.Name}': column{(missingKeys.Count > 1 ? "s" : "")} {string.Join(", ", missingKeys)} of order_by/version not in table '{schema.Table}' (columns: {string.Join(", ", schema.Fields.Select(f => f.Name))}).");
            }

            await _client.QueryAsync($"CREATE DATABASE IF NOT EXISTS {ClickHouseClient.Quote(_options.Database)}", ct).ConfigureAwait(false);
            var columns = string.Join(", ", schema.Fields.Select(f => $"{ClickHouseClient.Quote(f.Name)} {TypeOf(f)}"));
            var partition = _options.PartitionBy is null ? "" : $" PARTITION BY {_options.PartitionBy}";
            await _client.QueryAsync(
                $"CREATE TABLE IF NOT EXISTS {QualifiedTable} ({columns}) ENGINE = ReplacingMergeTree({ClickHouseClient.Quote(_options.Version)}){partition} " +
                $"ORDER BY ({string.Join(", ", _options.OrderBy.Select(ClickHouseClient.Quote))})", ct).ConfigureAwait(false);
            var existing = await _client.QueryAsync(
                $"SELECT name FROM system.columns WHERE database = '{_options.Database}' AND table = '{_options.Table}' FORMAT TabSeparated", ct).ConfigureAwait(false);
            _columns = existing.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            ClickHouseLog.TableReady(_log, $"{_options.Database}.{_options.Table}", string.Join(", ", _columns.Order(StringComparer.Ordinal)));
        }

        foreach (var field in schema.Fields.Where(f => !_columns.Contains(f.Name)))
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

            _columns.Add(field.Name);
        }
    }

    private bool NotNull(string column) => column == _options.Version || _options.OrderBy.Contains(column, StringComparer.Ordinal);

    private string TypeOf(FieldSpec field)
    {
        var type = field.Name == _options.Version ? "UInt64" : field.Type switch
        {
            FieldType.Integer => "Int64",
            FieldType.Double => "Float64",
            FieldType.Boolean => "UInt8",
            FieldType.Timestamp => "DateTime",
            FieldType.Date => "Date",
            _ => "String",
        };
        return NotNull(field.Name) ? type : $"Nullable({type})";
    }

    private ArrayBufferWriter<byte> Encode(ColumnBatch table)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(256, table.Count * 200));
        using var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        var fields = table.Schema.Fields;
        var names = fields.Select(f => JsonEncodedText.Encode(f.Name)).ToArray();
        // One typed writer per column: no boxing per value.
        var writers = new Action<int>[fields.Count];
        for (var c = 0; c < fields.Count; c++)
        {
            var type = fields[c].Type;
            Action missing = NotNull(fields[c].Name) ? () => WriteDefault(json, type) : json.WriteNullValue;
            writers[c] = table.Columns[c] switch
            {
                long?[] a => row => { if (a[row] is { } v) { json.WriteNumberValue(v); } else { missing(); } },
                double?[] a => row => { if (a[row] is { } v && double.IsFinite(v)) { json.WriteNumberValue(v); } else { missing(); } },
                bool?[] a => row => { if (a[row] is { } v) { json.WriteNumberValue(v ? 1 : 0); } else { missing(); } },
                DateTime?[] a => row => { if (a[row] is { } v) { WriteDateTime(json, v); } else { missing(); } },
                DateOnly?[] a => row => { if (a[row] is { } v) { json.WriteStringValue(v.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)); } else { missing(); } },
                string?[] a => row => { if (a[row] is { } v) { json.WriteStringValue(v); } else { missing(); } },
                var other => row => { if (other.GetValue(row) is { } v) { json.WriteStringValue(Convert.ToString(v, CultureInfo.InvariantCulture)); } else { missing(); } },
            };
        }

        for (var row = 0; row < table.Count; row++)
        {
            json.WriteStartObject();
            for (var c = 0; c < fields.Count; c++)
            {
                json.WritePropertyName(names[c]);
                writers[c](row);
            }

            json.WriteEndObject();
            json.Flush();
            buffer.Write("\n"u8);
            json.Reset();
        }

        return buffer;
    }

    /// <summary><c>YYYY-MM-DD hh:mm:ss</c>, what DateTime columns of ClickHouse 18.16 read (no fractions).</summary>
    private static void WriteDateTime(Utf8JsonWriter json, DateTime value)
    {
        Span<char> text = stackalloc char[19];
        value.TryFormat(text, out _, "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        json.WriteStringValue(text);
    }

    private static void WriteDefault(Utf8JsonWriter json, FieldType type)
    {
        switch (type)
        {
            case FieldType.Integer or FieldType.Double or FieldType.Boolean: json.WriteNumberValue(0); break;
            case FieldType.Timestamp: json.WriteStringValue("1970-01-01 00:00:00"); break;
            case FieldType.Date: json.WriteStringValue("1970-01-01"); break;
            default: json.WriteStringValue(""); break;
        }
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
