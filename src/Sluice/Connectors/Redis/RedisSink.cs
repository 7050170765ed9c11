using System.Globalization;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Redis;

public sealed class RedisSinkType : ISinkType
{
    public string Name => "redis";

    public ISinkFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(RedisSinkOptions.Parse(options));

    private sealed class Factory(RedisSinkOptions options) : ISinkFactory, IConnectionCheck, IChecksBatchShape
    {
        public void Check(BatchShape input, ShapeProblems problems) => options.Check(input, problems);

        public IBatchSink Create(IEngineServices services) => new RedisSink(services, options);

        public Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct) => options.CheckConnectionAsync(ct);
    }
}

/// <summary>
/// The generic Redis sink: one key per row from a template of its columns, written as a string (<c>mode: set</c>), a
/// hash (<c>hash</c>) or a counter (<c>counter</c>), with an optional TTL, per batch in one atomic script
/// (<see cref="RedisSinkScript"/>). A key remembers the highest source position applied to it, so a replay after a
/// crash, cut into batches however the stream cuts it, neither counts twice nor puts back an older value; a counter
/// therefore needs the rows' positions (<c>_lsn</c>, <c>_seq</c> of a change stream, <c>_offset</c> of the http source, or
/// <c>position_column</c>) and refuses a table without them. Rows whose key has a NULL go to the dead-letter store.
/// </summary>
public sealed class RedisSink : IBatchSink, Core.Status.IStatusSink
{
    private readonly IEngineServices _services;
    private readonly RedisSinkOptions _options;
    private readonly RedisScriptRunner _runner;

    public RedisSink(IEngineServices services, RedisSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        _services = services;
        _options = options;
        _runner = new RedisScriptRunner($"redis sink '{options.Name}'", options.Url, new Core.Resilience.RetryOptions(options.RetryDelay, options.RetryMaxDelay), services.Time, services.Logging.CreateLogger("Sluice.Redis"));
    }

    public string Name => _options.Name;

    /// <summary>Batches waiting are applied in one script (a counter's increments per key summed once).</summary>
    public SinkJoining Joining => SinkJoining.Waiting(20_000);

    public void AttachStatus(Core.Status.SinkStatus status) => _runner.Status = status;

    /// <summary>Keys changed by the last write (for tests).</summary>
    public long LastChanged { get; private set; }

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var raw in batch.Tables)
        {
            if (raw.Schema.Table != _options.Table || raw.Count == 0) { continue; }
            var bound = _options.Key.Bind(raw.Schema, Name);
            var keyColumns = _options.Key.Columns.Select(raw.Schema.IndexOf).ToHashSet();
            var rawOps = ChangeOps(raw);
            // A truncate row has no key (every table column is NULL): it is no refused row.
            var table = UnholdableValues.Refuse(raw, raw.Schema.Fields.Select((f, c) => keyColumns.Contains(c) ? (Func<int, string?>)(row => rawOps?[row] != ChangeEnvelope.Truncate && raw.Value(c, row) is null && raw.Verbatim(c)?[row] is null ? "a column of the key is NULL, so the row has no key" : null) : null).ToList(),
                _options.Key.Columns, _services.DeadLetters, $"redis:{Name}");
            if (table.Count == 0) { continue; }
            var ops = ChangeOps(table);
            var positions = PositionsOf(table);
            LastChanged = 0;
            // A truncate ends a run: the rows before it are applied, then the keys the sink holds for the table are removed.
            var start = 0;
            for (var row = 0; row <= table.Count; row++)
            {
                var truncate = row < table.Count && ops?[row] == ChangeEnvelope.Truncate;
                if (!truncate && row < table.Count) { continue; }
                if (row > start || truncate)
                {
                    var (keys, args) = Build(table, bound, positions, ops, start, row, truncate ? positions?[row] ?? "" : "");
                    LastChanged += (long)await _runner.EvaluateAsync(RedisSinkScript.Source, keys, args, ct).ConfigureAwait(false);
                }

                start = row + 1;
            }
        }
    }

    /// <summary>
    /// Each row's <c>_op</c> when the table is a change stream written as strings or hashes (a delete removes the key, a
    /// truncate the keys this sink wrote), else null: a counter counts rows, whatever they say.
    /// </summary>
    private string?[]? ChangeOps(ColumnBatch table) =>
        _options.Mode != RedisSinkMode.Counter && table.Schema.IndexOf(ChangeEnvelope.Op) is >= 0 and var at && table.Schema.Fields[at].Type == FieldType.String ? table.Strings(at) : null;

    /// <summary>The script's keys and arguments for rows [<paramref name="from"/>, <paramref name="to"/>) of the table, then the truncate at <paramref name="truncate"/> ('' none).</summary>
    private (RedisKey[] Keys, RedisValue[] Args) Build(ColumnBatch table, int[] bound, string?[]? positions, string?[]? ops, int from, int to, string truncate)
    {
        var value = Column(table, _options.Value, "value");
        var by = Column(table, _options.By, "by");
        if (by >= 0 && table.Schema.Fields[by].Type != FieldType.Integer)
        {
            throw new SluiceException($"redis sink '{Name}': by names column '{_options.By}' of table '{table.Schema.Table}', which is {table.Schema.Fields[by].Type.Name()}, not a whole number");
        }

        var fields = _options.Mode != RedisSinkMode.Hash ? []
            : _options.Columns.Count > 0 ? _options.Columns.Select(c => Column(table, c, "columns")).ToArray()
            : Enumerable.Range(0, table.Schema.Fields.Count).Where(c => !table.Schema.Fields[c].Name.StartsWith('_')).ToArray();

        // Per key, its rows in stream order: a counter applies each, a set or hash only the last (it replaces the others; a delete too).
        var rows = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var row = from; row < to; row++)
        {
            var key = _options.Key.Format(table, bound, row)!;
            if (!rows.TryGetValue(key, out var list)) { rows[key] = list = []; }
            if (_options.Mode != RedisSinkMode.Counter) { list.Clear(); }
            list.Add(row);
        }

        var keys = new List<RedisKey>((rows.Count * 2) + 2);
        var args = new List<RedisValue> { _options.Mode.ToString().ToLowerInvariant(), (long)(_options.Ttl?.TotalSeconds ?? 0), rows.Count, truncate };
        foreach (var (key, list) in rows)
        {
            keys.Add(key);
            keys.Add(key + ":_pos");
            args.Add(list.Count);
            foreach (var row in list)
            {
                args.Add(positions?[row] ?? "");
                var delete = ops?[row] == ChangeEnvelope.Delete;
                args.Add(delete ? "d" : "u");
                if (delete) { continue; }
                switch (_options.Mode)
                {
                    case RedisSinkMode.Counter:
                        args.Add(by < 0 ? 1 : table.Column<long>(by)[row] ?? 0);
                        break;
                    case RedisSinkMode.Set:
                        args.Add(value < 0 ? (RedisValue)RowJson.ToUtf8(table, row) : RedisValueText.Of(table, value, row) ?? "");
                        break;
                    default:
                        var present = fields.Where(c => RedisValueText.Of(table, c, row) is not null).ToList();
                        args.Add(present.Count);
                        foreach (var c in present)
                        {
                            args.Add(table.Schema.Fields[c].Name);
                            args.Add(RedisValueText.Of(table, c, row));
                        }

                        break;
                }
            }
        }

        if (ops is not null)
        {
            keys.Add(OwnKeys);
            keys.Add(OwnKeys + ":_truncated");
        }

        return (keys.ToArray(), args.ToArray());
    }

    /// <summary>
    /// A change stream's sink keeps the keys it wrote in this set, named after its key template (two sinks writing the
    /// same keys share it; no key of another template is in it): a truncate removes exactly these and their position
    /// keys, nothing it cannot prove is its own. Beside it, <c>&lt;set&gt;:_truncated</c> holds the last truncate's position.
    /// </summary>
    public string OwnKeys => _options.Key.Text + ":_keys";

    /// <summary>
    /// Each row's source position as text whose order is the positions' order, or null when the table has none (then a
    /// counter refuses it: it could count a replay twice). A change stream's position is the pair (<c>_lsn</c>,
    /// <c>_seq</c>): <c>_seq</c> alone starts again at 1 in every transaction, so the second transaction's first change
    /// of a key would look like one already applied.
    /// </summary>
    private string?[]? PositionsOf(ColumnBatch table)
    {
        var lsn = table.Schema.IndexOf(ChangeEnvelope.Lsn);
        var seq = table.Schema.IndexOf(ChangeEnvelope.Seq);
        if (_options.PositionColumn is null && lsn >= 0 && seq >= 0 && table.Schema.Fields[lsn].Type == FieldType.Integer && table.Schema.Fields[seq].Type == FieldType.Integer)
        {
            var (lsns, seqs) = (table.Column<long>(lsn), table.Column<long>(seq));
            return Enumerable.Range(0, table.Count).Select(row => lsns[row] is { } l && seqs[row] is { } s ? PositionText(l) + PositionText(s) : null).ToArray();
        }

        var name = _options.PositionColumn ?? "_offset";
        var at = table.Schema.IndexOf(name);
        if (at >= 0 && table.Schema.Fields[at].Type == FieldType.Integer) { return table.Column<long>(at).Select(p => p is { } v ? PositionText(v) : null).ToArray(); }
        if (_options.PositionColumn is not null || _options.Mode == RedisSinkMode.Counter)
        {
            throw new SluiceException($"redis sink '{Name}': table '{table.Schema.Table}' has no integer position column '{name}' " +
                (_options.Mode == RedisSinkMode.Counter ? "; a counter needs each row's source position to count a replayed row once (a change stream's _lsn and _seq, the http source's _offset): name one with position_column" : "(position_column)"));
        }

        return null;
    }

    private int Column(ColumnBatch table, string? name, string option)
    {
        if (name is null) { return -1; }
        var at = table.Schema.IndexOf(name);
        return at >= 0 ? at : throw new SluiceException($"redis sink '{Name}': {option} names column '{name}', which table '{table.Schema.Table}' does not have (columns: {string.Join(", ", table.Schema.Fields.Select(f => f.Name))})");
    }

    /// <summary>A position as fixed-width text whose order is the numbers' order (negative ones included): Lua compares it as text, exactly.</summary>
    private static string PositionText(long position) => ((ulong)position ^ 0x8000000000000000UL).ToString("D20", CultureInfo.InvariantCulture);

    public ValueTask DisposeAsync() => _runner.DisposeAsync();
}
