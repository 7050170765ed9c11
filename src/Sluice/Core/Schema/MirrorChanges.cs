using System.Globalization;

namespace Sluice.Core.Schema;

/// <summary>A change's place in the source's history: (<c>_lsn</c>, <c>_seq</c>), ordered as the changes were committed.</summary>
public readonly record struct ChangePosition(long Lsn, long Seq) : IComparable<ChangePosition>
{
    public int CompareTo(ChangePosition other) => Lsn != other.Lsn ? Lsn.CompareTo(other.Lsn) : Seq.CompareTo(other.Seq);

    public static bool operator <(ChangePosition a, ChangePosition b) => a.CompareTo(b) < 0;

    public static bool operator >(ChangePosition a, ChangePosition b) => a.CompareTo(b) > 0;

    public static bool operator <=(ChangePosition a, ChangePosition b) => a.CompareTo(b) <= 0;

    public static bool operator >=(ChangePosition a, ChangePosition b) => a.CompareTo(b) >= 0;
}

/// <summary>
/// What a mirror does with a run of changes of one table: between two truncates (a <see cref="MirrorSegment"/>), each
/// key's changes reduced to their net effect, an upsert of the row as it ends or a delete, so a sink writes each key
/// once per segment, in any order. Applying the segments in order (upserts, deletes, then the truncate that ends the
/// segment) leaves the sink's table as the source's.
/// </summary>
/// <param name="Upserts">One row per key that exists at the end of the segment, in <see cref="MirrorChanges.StateSchema"/> (the table's columns, then <c>_lsn _seq _txid _commit_ts</c> of its last change).</param>
/// <param name="Kept">
/// Per upsert row, the indexes (into <paramref name="Upserts"/>' fields) of the columns the changes did not carry (an
/// unchanged TOASTed value, docs/CDC.md): the sink keeps them as stored for the key in <paramref name="KeptFrom"/>; null when none.
/// </param>
/// <param name="KeptFrom">
/// Per upsert row, the key columns of the stored row the kept columns come from (the row's own key, or the old key of a
/// key change), then the <c>_lsn _seq</c> of the change that names it. A key change whose delete ended the previous batch
/// names no old key in this one: a sink that keeps the row a batch's last delete removed (the postgres mirror) finds it
/// by that position, the delete being the change just before.
/// </param>
/// <param name="Deletes">The key columns and <c>_lsn _seq</c> of each key deleted by the end of the segment.</param>
/// <param name="TruncateAt">The position of the truncate that ends the segment (applied after its upserts and deletes), or null.</param>
public sealed record MirrorSegment(ColumnBatch Upserts, IReadOnlyList<int[]?> Kept, ColumnBatch KeptFrom, ColumnBatch Deletes, ChangePosition? TruncateAt)
{
    /// <summary>The prefix of the staged columns naming the stored row a kept value comes from (<see cref="MirrorChanges.Staged"/>).</summary>
    public const string FromPrefix = "_sluice_from_";

    /// <summary>The prefix of the staged flag columns: true where a row keeps the column's stored value.</summary>
    public const string KeepPrefix = "_sluice_keep_";

    /// <summary>The indexes of the columns some upsert row keeps.</summary>
    public IReadOnlyList<int> KeptColumns => Kept.Where(k => k is not null).SelectMany(k => k!).Distinct().Order().ToList();
}

/// <summary>
/// Turns a batch of change rows (the change envelope, docs/CDC.md) into what a mirror applies (<see cref="MirrorSegment"/>):
/// inserts, updates and snapshot reads as upserts on the key, deletes as deletes, a truncate as the end of a segment; a
/// key change (a delete and an insert in one transaction) moves the row; a column marked unchanged takes the value an
/// earlier change of the batch gave it, else stays as the sink has it. Shared by the sinks that keep mirrors.
/// </summary>
public static class MirrorChanges
{
    /// <summary>The envelope columns a mirror row keeps: where its last change sits, and when it was committed.</summary>
    public static IReadOnlyList<string> StateEnvelope { get; } = [ChangeEnvelope.Lsn, ChangeEnvelope.Seq, ChangeEnvelope.TxId, ChangeEnvelope.CommitTs];

    /// <summary>The mirror's columns for a change table: the table's own, then <see cref="StateEnvelope"/>.</summary>
    public static TableSchema StateSchema(TableSchema changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var fields = changes.Fields.Where(f => !ChangeEnvelope.IsEnvelope(f.Name) || StateEnvelope.Contains(f.Name)).ToList();
        return new TableSchema(changes.Table, fields) { Key = changes.Key };
    }

    /// <summary>True when the table carries the envelope columns a mirror needs.</summary>
    public static bool IsChangeTable(TableSchema schema) =>
        schema is not null && new[] { ChangeEnvelope.Op, ChangeEnvelope.Lsn, ChangeEnvelope.Seq }.All(c => schema.IndexOf(c) >= 0);

    /// <summary>The position of the batch's last change (the highest: rows come in commit order), or null when it is empty.</summary>
    public static ChangePosition? Last(ColumnBatch changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count == 0) { return null; }
        var lsn = changes.Column<long>(changes.Schema.IndexOf(ChangeEnvelope.Lsn));
        var seq = changes.Column<long>(changes.Schema.IndexOf(ChangeEnvelope.Seq));
        var last = new ChangePosition(long.MinValue, long.MinValue);
        for (var row = 0; row < changes.Count; row++)
        {
            var at = new ChangePosition(lsn[row] ?? 0, seq[row] ?? 0);
            if (at > last) { last = at; }
        }

        return last;
    }

    /// <summary>
    /// The segments of <paramref name="changes"/> (one table's rows) keyed by <paramref name="key"/>, applied in
    /// position order (<see cref="InPositionOrder"/>), whatever order the batch holds them in. Changes before
    /// <paramref name="after"/> are skipped: the sink applied them already (a replay). A change at exactly
    /// <paramref name="after"/> is applied again, which leaves what it left: the snapshot gives many rows one position,
    /// so a position alone does not say which of them were applied.
    /// </summary>
    public static IReadOnlyList<MirrorSegment> Plan(ColumnBatch changes, IReadOnlyList<string> key, ChangePosition? after = null)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(key);
        return new Planner(InPositionOrder(changes, key), key).Run(after);
    }

    /// <summary>
    /// The changes in position order (<c>_lsn</c>, <c>_seq</c>), each change of a key once. In cluster mode a batch can
    /// hold a copy of a change after newer changes of its key (JetStream's redelivery of a batch that outlived its ack
    /// wait, a change the slot's holder published again after a failed acknowledgement), and a mirror applied in batch
    /// order would end on the copy. A sort that keeps the batch's order among equal positions, and a change of a key at
    /// the position of one already kept for that key dropped: one key's changes never share a position (the stream's
    /// are a transaction's commit and sequence, a snapshot's or chunk's rows one each per key), so that is a copy. Rows
    /// of different keys at one position (a snapshot's batch) stay as they are. The batch itself when it is in that
    /// order already (the usual case: one pass, keys read only where positions repeat).
    /// </summary>
    public static ColumnBatch InPositionOrder(ColumnBatch changes, IReadOnlyList<string> key)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(key);
        if (changes.Count < 2) { return changes; }
        var schema = changes.Schema;
        var keyAt = key.Select(schema.IndexOf).Where(i => i >= 0).ToArray();
        var lsn = changes.Column<long>(schema.IndexOf(ChangeEnvelope.Lsn));
        var seq = changes.Column<long>(schema.IndexOf(ChangeEnvelope.Seq));
        var at = (int row) => new ChangePosition(lsn[row] ?? 0, seq[row] ?? 0);
        var sorted = true;
        for (var row = 1; row < changes.Count && sorted; row++) { sorted = at(row) >= at(row - 1); }
        var kept = WithoutCopies(sorted ? Enumerable.Range(0, changes.Count) : Enumerable.Range(0, changes.Count).OrderBy(at), changes, keyAt, at);
        return sorted && kept.Count == changes.Count ? changes : changes.Gather(kept.ToArray());
    }

    /// <summary>The rows of <paramref name="order"/> (in position order) but those at the position and of the key of a row kept before them.</summary>
    private static List<int> WithoutCopies(IEnumerable<int> order, ColumnBatch changes, int[] keyAt, Func<int, ChangePosition> at)
    {
        var kept = new List<int>(changes.Count);
        HashSet<string>? keys = null;
        int? previous = null;
        foreach (var row in order)
        {
            if (previous is { } p && at(row) == at(p))
            {
                // Keys are read only where a position repeats: a snapshot's batch, or a copy.
                keys ??= new HashSet<string>(StringComparer.Ordinal) { KeyOf(changes, keyAt, p) };
                if (!keys.Add(KeyOf(changes, keyAt, row))) { continue; }
            }
            else
            {
                keys = null;
            }

            kept.Add(row);
            previous = row;
        }

        return kept;
    }

    /// <summary>The row's key as one string: each value in an invariant form, tagged so that NULL, '' and "null" differ.</summary>
    private static string KeyOf(ColumnBatch changes, int[] keyAt, int row) =>
        string.Join('\u001f', keyAt.Select(k => changes.Verbatim(k)?[row] is { } text ? "v" + text : Format(changes.Columns[k].GetValue(row))));

    private static string Format(object? value) => value switch
    {
        null => "\u0000",
        DateTime t => "t" + t.ToString("O", CultureInfo.InvariantCulture),
        IFormattable f => "f" + f.ToString(null, CultureInfo.InvariantCulture),
        _ => "s" + value,
    };

    /// <summary>
    /// A segment's upserts as a sink stages them: the row's columns, then per key column <c>_sluice_from_&lt;key&gt;</c>
    /// (the stored row to keep values from) and per kept column <c>_sluice_keep_&lt;column&gt;</c> (boolean: keep it).
    /// </summary>
    public static ColumnBatch Staged(MirrorSegment segment)
    {
        ArgumentNullException.ThrowIfNull(segment);
        var upserts = segment.Upserts;
        var kept = segment.KeptColumns;
        var fields = upserts.Schema.Fields
            .Concat(segment.KeptFrom.Schema.Fields.Select(f => f with { Name = MirrorSegment.FromPrefix + f.Name }))
            .Concat(kept.Select(c => new FieldSpec(MirrorSegment.KeepPrefix + upserts.Schema.Fields[c].Name, FieldType.Boolean, true)))
            .ToList();
        var columns = upserts.Columns.Concat(segment.KeptFrom.Columns).ToList();
        foreach (var c in kept)
        {
            columns.Add(segment.Kept.Select(k => (bool?)(k is not null && k.Contains(c))).ToArray());
        }

        var verbatim = Enumerable.Range(0, upserts.Schema.Fields.Count).Select(upserts.Verbatim)
            .Concat(Enumerable.Range(0, segment.KeptFrom.Schema.Fields.Count).Select(segment.KeptFrom.Verbatim))
            .Concat(kept.Select(_ => (string?[]?)null)).ToArray();
        return new ColumnBatch(new TableSchema(upserts.Schema.Table, fields) { Key = upserts.Schema.Key }, columns.ToArray(), null, upserts.Count, verbatim);
    }

    private sealed class Planner
    {
        private readonly ColumnBatch _changes;
        private readonly int[] _key;
        private readonly string?[] _op;
        private readonly long?[] _lsn;
        private readonly long?[] _seq;
        private readonly HashSet<int>?[]? _unchanged;
        private readonly TableSchema _state;
        private readonly int[] _stateColumns;
        private readonly List<MirrorSegment> _segments = [];
        private Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

        public Planner(ColumnBatch changes, IReadOnlyList<string> key)
        {
            _changes = changes;
            var schema = changes.Schema;
            if (!IsChangeTable(schema)) { throw new ArgumentException($"table '{schema.Table}' carries no change envelope ({ChangeEnvelope.Op}, {ChangeEnvelope.Lsn}, {ChangeEnvelope.Seq})", nameof(changes)); }
            _key = key.Select(k => schema.IndexOf(k) is var i and >= 0 ? i : throw new ArgumentException($"key column '{k}' is not in table '{schema.Table}'", nameof(key))).ToArray();
            if (_key.Length == 0) { throw new ArgumentException($"table '{schema.Table}': a mirror needs key columns", nameof(key)); }
            _op = changes.Strings(schema.IndexOf(ChangeEnvelope.Op));
            _lsn = changes.Column<long>(schema.IndexOf(ChangeEnvelope.Lsn));
            _seq = changes.Column<long>(schema.IndexOf(ChangeEnvelope.Seq));
            _unchanged = ChangeEnvelope.UnchangedByRow(changes);
            _state = StateSchema(schema);
            _stateColumns = _state.Fields.Select(f => schema.IndexOf(f.Name)).ToArray();
        }

        public List<MirrorSegment> Run(ChangePosition? after)
        {
            for (var row = 0; row < _changes.Count; row++)
            {
                if (after is { } done && Position(row) < done) { continue; }
                switch (_op[row])
                {
                    case ChangeEnvelope.Truncate:
                        Close(Position(row));
                        break;
                    case ChangeEnvelope.Delete:
                        var deleted = KeyOf(row);
                        _entries[deleted] = new Entry(row) { Deleted = true, Previous = _entries.GetValueOrDefault(deleted) };
                        break;
                    default:
                        _entries[KeyOf(row)] = Upsert(row);
                        break;
                }
            }

            if (_entries.Count > 0 || _segments.Count == 0) { Close(null); }
            return _segments;
        }

        /// <summary>An insert, update or read of <paramref name="row"/>; its unchanged columns resolved against what the batch already holds for the key they belong to.</summary>
        private Entry Upsert(int row)
        {
            var entry = new Entry(row) { From = row };
            if (_unchanged?[row] is not { Count: > 0 } unchanged) { return entry; }

            // A key change arrives as a delete of the old key right before the insert of the new one: the values the
            // insert did not carry are the old key's.
            var from = row;
            Entry? source;
            if (_op[row] == ChangeEnvelope.Insert && row > 0 && _op[row - 1] == ChangeEnvelope.Delete && _lsn[row - 1] == _lsn[row] && _seq[row - 1] == _seq[row] - 1)
            {
                from = row - 1;
                source = _entries.GetValueOrDefault(KeyOf(from)) is { Deleted: true } moved ? moved.Previous : null;
            }
            else
            {
                source = _entries.GetValueOrDefault(KeyOf(row));
            }

            entry.From = source is { Deleted: false } ? source.From : from;
            foreach (var c in unchanged)
            {
                if (source is { Deleted: false } && source.Kept?.Contains(c) != true)
                {
                    (entry.Patched ??= [])[c] = source.Patched?.GetValueOrDefault(c, source.Row) ?? source.Row;
                }
                else
                {
                    (entry.Kept ??= []).Add(c);
                }
            }

            return entry;
        }

        private void Close(ChangePosition? truncate)
        {
            var upserts = _entries.Values.Where(e => !e.Deleted).ToList();
            // A delete that ends the batch may be the first half of a key change whose insert comes in the next batch:
            // the row it removes is written as this batch left it first, so what the sink held last is its final version.
            if (truncate is null && _changes.Count > 0 && _op[^1] == ChangeEnvelope.Delete &&
                _entries.GetValueOrDefault(KeyOf(_changes.Count - 1)) is { Deleted: true, Previous: { Deleted: false } before } last && last.Row == _changes.Count - 1)
            {
                upserts.Add(before);
            }

            upserts = upserts.OrderBy(e => e.Row).ToList();
            var deletes = _entries.Values.Where(e => e.Deleted).OrderBy(e => e.Row).Select(e => e.Row).ToArray();
            var rows = upserts.Select(e => e.Row).ToArray();
            var gathered = _changes.Gather(rows);
            var columns = _stateColumns.Select(c => gathered.Columns[c]).ToArray();
            var verbatim = _stateColumns.Select(c => gathered.Verbatim(c) is { } v ? (string?[])v.Clone() : null).ToArray();
            for (var i = 0; i < upserts.Count; i++)
            {
                foreach (var (column, source) in upserts[i].Patched ?? [])
                {
                    var at = Array.IndexOf(_stateColumns, column);
                    columns[at].SetValue(_changes.Columns[column].GetValue(source), i);
                    if (_changes.Verbatim(column) is { } text) { (verbatim[at] ??= new string?[upserts.Count])[i] = text[source]; }
                }
            }

            var kept = upserts.Select(e => e.Kept?.Select(c => Array.IndexOf(_stateColumns, c)).Order().ToArray()).ToList();
            var deleteColumns = _key.Append(_changes.Schema.IndexOf(ChangeEnvelope.Lsn)).Append(_changes.Schema.IndexOf(ChangeEnvelope.Seq)).ToArray();
            var keySchema = new TableSchema(_state.Table, deleteColumns.Select(c => _changes.Schema.Fields[c]).ToList()) { Key = _state.Key };
            var from = _changes.Gather(upserts.Select(e => e.From).ToArray());
            var keptFrom = new ColumnBatch(keySchema, deleteColumns.Select(c => from.Columns[c]).ToArray(), null, upserts.Count, deleteColumns.Select(from.Verbatim).ToArray());
            var deleted = _changes.Gather(deletes);
            var deleteSchema = new TableSchema(_state.Table, deleteColumns.Select(c => _changes.Schema.Fields[c]).ToList()) { Key = _state.Key };
            _segments.Add(new MirrorSegment(
                new ColumnBatch(_state, columns, null, upserts.Count, verbatim),
                kept,
                keptFrom,
                new ColumnBatch(deleteSchema, deleteColumns.Select(c => deleted.Columns[c]).ToArray(), null, deletes.Length, deleteColumns.Select(deleted.Verbatim).ToArray()),
                truncate));
            _entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        }

        private ChangePosition Position(int row) => new(_lsn[row] ?? 0, _seq[row] ?? 0);

        private string KeyOf(int row) => MirrorChanges.KeyOf(_changes, _key, row);
    }

    /// <summary>Where a key stands in the segment: its last change, the values an unchanged column takes from earlier changes, the columns still kept as stored, and the stored row they come from.</summary>
    private sealed class Entry(int row)
    {
        public int Row { get; } = row;

        public bool Deleted { get; init; }

        /// <summary>For a delete: the key's entry before it (a key change's insert takes its unchanged values from there).</summary>
        public Entry? Previous { get; init; }

        public int From { get; set; }

        public Dictionary<int, int>? Patched { get; set; }

        public HashSet<int>? Kept { get; set; }
    }
}
