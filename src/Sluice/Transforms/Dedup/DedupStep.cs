using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Transforms.Dedup;

/// <summary>The <c>dedup</c> step type.</summary>
public sealed class DedupStepType : IStepType
{
    public string Name => "dedup";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(DedupOptions.Parse(options, recipe));

    private sealed class Factory(DedupOptions options) : IStepFactory, IShapesBatches
    {
        /// <summary>A table missing a key column dead-letters every row.</summary>
        public BatchShape Shape(BatchShape input, ShapeProblems problems)
        {
            options.Tables.Check(input, problems, "dedup");
            var use = new ColumnUse(problems, "dedup");
            return input.Edit(options.Tables.Tables, table =>
            {
                foreach (var key in options.Key) { use.Need(table, "key", key); }
                return table;
            });
        }

        public IBatchStep Create(IEngineServices services) =>
            new DedupStep(options, StepLetters.For(services, options.Step), options.Persist ? new DedupKeyStore(services.Metadata, options.Step) : null, services.Time);
    }
}

/// <summary>
/// Drops rows of the selected tables whose key was seen within the window (the first row of a key passes). Keys are
/// hashed (64-bit xxHash3 of the key's typed values); a table missing a key column dead-letters its rows with the
/// reason. The window is kept in the metadata store (unless <c>persist: false</c>), so it holds across restarts; a
/// batch replayed after a crash keeps the rows it kept before, because each key remembers where its first row stands.
/// </summary>
public sealed class DedupStep : IBatchStep
{
    private readonly DedupOptions _options;
    private readonly StepLetters _letters;
    private readonly DedupKeyStore? _store;
    private readonly TimeProvider _time;
    private readonly DedupWindow _window;
    private bool _loaded;

    internal DedupStep(DedupOptions options, StepLetters letters, DedupKeyStore? store, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _letters = letters;
        _store = store;
        _time = time;
        _window = new DedupWindow(options.Window, options.MaxKeys);
    }

    /// <summary>Rows dropped as repeats since start.</summary>
    public long Dropped { get; private set; }

    /// <summary>Keys that left the window early because it held <c>max_keys</c> (their repeats pass).</summary>
    public long Evicted => _window.Evicted;

    public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        if (!_loaded && _store is not null)
        {
            foreach (var (key, place, seenAt) in _store.Load(now - (long)_options.Window.TotalMilliseconds, _options.MaxKeys)) { _window.Add(key, place, seenAt); }
            _window.Left.Clear();
        }

        _loaded = true;
        _window.Expire(now);
        var added = new List<(ulong, ulong, long)>();
        var tables = batch.Tables.Select(t => _options.Tables.Takes(t) ? Apply(t, batch.Position, now, added) : t).ToList();
        if (_store is not null && (added.Count > 0 || _window.Left.Count > 0))
        {
            _store.Save(added, _window.Left, now - (long)_options.Window.TotalMilliseconds);
        }

        _window.Left.Clear();
        return ValueTask.FromResult(batch with { Tables = tables });
    }

    private ColumnBatch Apply(ColumnBatch table, long position, long now, List<(ulong, ulong, long)> added)
    {
        var columns = _options.Key.Select(table.Schema.IndexOf).ToArray();
        if (columns.Any(c => c < 0))
        {
            var missing = string.Join(", ", _options.Key.Where(k => table.Schema.IndexOf(k) < 0));
            _letters.Add(table, position, Enumerable.Range(0, table.Count).Select(r => (r, $"dedup: the row has no key field {missing}")).ToList());
            return table.Gather([]);
        }

        var places = new RowPlace(table, position);
        var keep = new List<int>(table.Count);
        var hash = new XxHash3();
        for (var row = 0; row < table.Count; row++)
        {
            hash.Reset();
            foreach (var c in columns) { Append(hash, table.Columns[c].GetValue(row)); }
            var key = hash.GetCurrentHashAsUInt64();
            var place = XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(places.Of(row)));
            if (_window.IsRepeat(key, place, now, out var isNew)) { Dropped++; continue; }
            if (isNew) { added.Add((key, place, now)); }
            keep.Add(row);
        }

        return keep.Count == table.Count ? table : table.Gather(CollectionsMarshal.AsSpan(keep));
    }

    /// <summary>A value with its type, so that 1, 1.0, "1" and NULL are four different keys.</summary>
    private static void Append(XxHash3 hash, object? value)
    {
        Span<byte> buffer = stackalloc byte[9];
        switch (value)
        {
            case null: buffer[0] = 0; hash.Append(buffer[..1]); break;
            case string s: buffer[0] = 1; hash.Append(buffer[..1]); hash.Append(Encoding.UTF8.GetBytes(s)); buffer[0] = 0xFF; hash.Append(buffer[..1]); break;
            case long l: buffer[0] = 2; BitConverter.TryWriteBytes(buffer[1..], l); hash.Append(buffer); break;
            case double d: buffer[0] = 3; BitConverter.TryWriteBytes(buffer[1..], d); hash.Append(buffer); break;
            case bool b: buffer[0] = 4; buffer[1] = b ? (byte)1 : (byte)0; hash.Append(buffer[..2]); break;
            case DateTime t: buffer[0] = 5; BitConverter.TryWriteBytes(buffer[1..], t.Ticks); hash.Append(buffer); break;
            case DateOnly d: buffer[0] = 6; BitConverter.TryWriteBytes(buffer[1..], (long)d.DayNumber); hash.Append(buffer); break;
            default: buffer[0] = 7; hash.Append(buffer[..1]); hash.Append(Encoding.UTF8.GetBytes(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "")); break;
        }
    }
}
