using System.Globalization;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Lookup;

/// <summary>
/// The dimension rows a <c>lookup</c> holds, by key (the key's invariant text), least recently used first out past
/// <c>max_rows</c>. Kept current by the dimension's changes in the stream: a delete removes the key, a truncate empties
/// the cache, and a column a change marks unchanged (<c>_unchanged</c>: a TOASTed value the update did not touch, which
/// the server does not send) keeps the cached value instead of becoming NULL. A change of a key not held that leaves a
/// copied column unchanged cannot be completed here, so it is not cached (a Postgres-loaded dimension reads the whole
/// row on the next miss). engagement-cdc's <c>engagement_enrich</c> step keeps its content dimension in one too.
/// </summary>
public sealed class LookupCache(LookupOptions options, int capacity)
{
    private readonly Dictionary<string, LinkedListNode<(string Key, object?[] Values)>> _rows = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Key, object?[] Values)> _order = [];

    /// <summary>The copied fields' types, in <see cref="LookupOptions.Fields"/> order.</summary>
    public IReadOnlyList<FieldType> Types { get; set; } = options.Fields.Select(f => options.Types.GetValueOrDefault(f, FieldType.String)).ToList();

    public int Count => _rows.Count;

    /// <summary>Keys that left because the cache was full.</summary>
    public long Evicted { get; private set; }

    /// <summary>The key's text: integers and text as written, anything else invariant.</summary>
    public static string? KeyText(object? value) => value switch
    {
        null => null,
        string s => s,
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d when d == Math.Floor(d) && Math.Abs(d) < 1e15 => ((long)d).ToString(CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    public object?[]? Find(string key)
    {
        if (!_rows.TryGetValue(key, out var node)) { return null; }
        _order.Remove(node);
        _order.AddFirst(node);
        return node.Value.Values;
    }

    public void Put(string key, object?[] values)
    {
        if (_rows.TryGetValue(key, out var node))
        {
            _order.Remove(node);
            node.Value = (key, values);
            _order.AddFirst(node);
            return;
        }

        _rows[key] = _order.AddFirst((key, values));
        while (_rows.Count > capacity && _order.Last is { } oldest)
        {
            _order.RemoveLast();
            _rows.Remove(oldest.Value.Key);
            Evicted++;
        }
    }

    public void Remove(string key)
    {
        if (_rows.Remove(key, out var node)) { _order.Remove(node); }
    }

    /// <summary>Applies the dimension's changes (rows of its table in the stream, with or without the change envelope).</summary>
    public void Apply(ColumnBatch changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var key = changes.Schema.IndexOf(options.DimensionKey);
        var op = changes.Schema.IndexOf(ChangeEnvelope.Op);
        var fields = options.Fields.Select(changes.Schema.IndexOf).ToArray();
        var unchanged = ChangeEnvelope.UnchangedByRow(changes);
        for (var row = 0; row < changes.Count; row++)
        {
            var what = op >= 0 ? changes.Strings(op)[row] : null;
            if (what == ChangeEnvelope.Truncate)
            {
                _rows.Clear();
                _order.Clear();
                continue;
            }

            if (key < 0 || KeyText(changes.Value(key, row)) is not { } id) { continue; }
            if (what == ChangeEnvelope.Delete)
            {
                Remove(id);
                continue;
            }

            var marked = unchanged?[row];
            var kept = marked is null ? null : _rows.GetValueOrDefault(id)?.Value.Values;
            if (marked is not null && kept is null && fields.Any(marked.Contains))
            {
                // The values the update left out are not known here: better no entry than one with them blanked.
                Remove(id);
                continue;
            }

            Put(id, fields.Select((f, i) =>
                f < 0 ? null : kept is not null && marked!.Contains(f) ? kept[i] : DimensionValues.Convert(changes.Value(f, row), Types[i])).ToArray());
        }
    }
}
