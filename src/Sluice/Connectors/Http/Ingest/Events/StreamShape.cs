using System.Buffers.Binary;
using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// All schema versions of a stream merged into the tables they land in (a field of any version is a column; a row of
/// another version leaves it empty), and a lookup tree of JSON property names for the parser.
/// Main table: tenant, version, the declared fields, <c>received_at</c>, <c>_offset</c> (the event's landing-log
/// offset, which makes replays idempotent). Child tables: tenant, the parent's key and time, <c>_index</c> (the element's
/// position in its array), the element's fields, <c>_offset</c>.
/// </summary>
public sealed class StreamShape
{
    public const string ReceivedAtColumn = "received_at";
    public const string OffsetColumn = "_offset";
    public const string IndexColumn = "_index";

    public StreamShape(HttpIngestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        var fields = new List<EventField>();
        foreach (var f in options.Versions.SelectMany(v => v.Fields))
        {
            if (fields.All(x => x.Column != f.Column)) { fields.Add(f); }
        }

        Fields = fields;
        var columns = new List<FieldSpec>
        {
            new(options.TenantField, FieldType.String, true),
            new(EventField.ColumnName(options.VersionField), FieldType.Integer, true),
        };
        columns.AddRange(fields.Select(f => new FieldSpec(f.Column, f.Type, false)));
        if (options.JsonColumn is { } json) { columns.Add(new FieldSpec(json, FieldType.String, true)); }
        columns.Add(new FieldSpec(ReceivedAtColumn, FieldType.Timestamp, true));
        columns.Add(new FieldSpec(OffsetColumn, FieldType.Integer, true));
        Main = new TableSchema(options.Table, columns);
        TenantIndex = 0;
        VersionIndex = 1;
        FieldBase = 2;
        ReceivedAtIndex = columns.Count - 2;
        OffsetIndex = columns.Count - 1;
        JsonIndex = options.JsonColumn is null ? -1 : columns.Count - 3;
        TimeIndex = Main.IndexOf(EventField.ColumnName(options.TimeField));
        DedupIndex = options.DedupKey is null ? -1 : Main.IndexOf(EventField.ColumnName(options.DedupKey));

        var children = new List<ChildShape>();
        foreach (var c in options.Versions.SelectMany(v => v.Children))
        {
            var existing = children.FirstOrDefault(x => x.Path == c.Path);
            if (existing is null)
            {
                children.Add(existing = new ChildShape(c.Path, c.Table, children.Count));
            }

            foreach (var f in c.Fields.Where(f => existing.Fields.All(x => x.Column != f.Column)))
            {
                existing.Fields.Add(f);
            }
        }

        foreach (var c in children)
        {
            var childColumns = new List<FieldSpec> { new(options.TenantField, FieldType.String, true) };
            if (options.DedupKey is not null) { childColumns.Add(new FieldSpec(EventField.ColumnName(options.DedupKey), FieldType.String, true)); }
            childColumns.Add(new FieldSpec(EventField.ColumnName(options.TimeField), FieldType.Timestamp, true));
            childColumns.Add(new FieldSpec(IndexColumn, FieldType.Integer, true));
            c.FieldBase = childColumns.Count;
            childColumns.AddRange(c.Fields.Select(f => new FieldSpec(f.Column, f.Type, false)));
            childColumns.Add(new FieldSpec(OffsetColumn, FieldType.Integer, true));
            c.Schema = new TableSchema(c.Table, childColumns);
            c.Root = new Node();
            for (var i = 0; i < c.Fields.Count; i++) { c.Root.Add(c.Fields[i].Path.Split('.'), NodeKind.Field, c.FieldBase + i, c.Fields[i]); }
        }

        Children = children;
        Root = new Node();
        for (var i = 0; i < fields.Count; i++) { Root.Add(fields[i].Path.Split('.'), NodeKind.Field, FieldBase + i, fields[i]); }
        Root.Add([options.VersionField], NodeKind.Version, VersionIndex, null);
        Root.Add([options.TenantField], NodeKind.Tenant, TenantIndex, null);
        foreach (var c in children) { Root.Add(c.Path.Split('.'), NodeKind.Child, c.Number, null); }

        var strings = 0;
        Root.NumberStrings(ref strings);
        foreach (var c in children) { c.Root.NumberStrings(ref strings); }
        StringFields = strings;

        Versions = options.Versions.ToDictionary(v => v.Version, v => new VersionShape(this, v));
        if (options.DedupKey is not null) { Root.MarkNeeded(options.DedupKey.Split('.')); }
        var compared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var condition in options.Versions.SelectMany(v => v.Fields).Select(f => f.RequiredWhen).OfType<FieldCondition>())
        {
            Root.MarkNeeded(condition.Field.Split('.'));
            compared.Add(EventField.ColumnName(condition.Field));
        }

        // Text of the main table is built as UTF-8 (see Utf8Column), except enumerations (one shared string per value
        // already) and fields a condition compares as text.
        Utf8 = new bool[Main.Fields.Count];
        for (var i = 0; i < fields.Count; i++)
        {
            Utf8[FieldBase + i] = fields[i].Type == FieldType.String && fields[i].Values is null && !compared.Contains(fields[i].Column);
        }

        if (JsonIndex >= 0) { Utf8[JsonIndex] = true; }
        Root.MarkUtf8(Utf8);
        var childKeyUtf8 = DedupIndex >= 0 && Utf8[DedupIndex];

        // A child row is kept before its event's version is known, so only text no version drops (declared by every
        // version with the child) can be UTF-8; PII is hashed once the row is kept, so it stays a string.
        foreach (var c in children)
        {
            var declaring = options.Versions.Select(v => v.Children.FirstOrDefault(x => x.Path == c.Path)).OfType<EventChild>().ToList();
            c.Utf8 = new bool[c.Schema.Fields.Count];
            for (var i = 0; i < c.Fields.Count; i++)
            {
                var f = c.Fields[i];
                c.Utf8[c.FieldBase + i] = f.Type == FieldType.String && f.Values is null && !f.Pii && declaring.All(d => d.Fields.Any(x => x.Column == f.Column));
            }

            if (childKeyUtf8) { c.Utf8[ChildKeyIndex] = true; }
            c.Root.MarkUtf8(c.Utf8);
        }
    }

    /// <summary>Which main-table columns are built as UTF-8 text (<see cref="Core.Schema.Utf8ColumnBuilder"/>).</summary>
    public bool[] Utf8 { get; }

    /// <summary>A child table's column of its parent's dedup key (after the tenant), when the stream has a key; UTF-8 when the main table's key is.</summary>
    public const int ChildKeyIndex = 1;

    public HttpIngestOptions Options { get; }

    /// <summary>Every declared field of any version, in first-declared order.</summary>
    public IReadOnlyList<EventField> Fields { get; }

    public TableSchema Main { get; }

    public IReadOnlyList<ChildShape> Children { get; }

    /// <summary>How many text fields (not enumerations) the tables have, each with its <see cref="Node.Entry.StringSlot"/>.</summary>
    public int StringFields { get; }

    public IReadOnlyDictionary<int, VersionShape> Versions { get; }

    public int TenantIndex { get; }

    public int VersionIndex { get; }

    public int FieldBase { get; }

    public int ReceivedAtIndex { get; }

    public int OffsetIndex { get; }

    /// <summary>The column of the event's JSON as received (<see cref="HttpIngestOptions.JsonColumn"/>), or -1.</summary>
    public int JsonIndex { get; }

    public int TimeIndex { get; }

    public int DedupIndex { get; }

    internal Node Root { get; }

    public IEnumerable<TableSchema> Tables => new[] { Main }.Concat(Children.Select(c => c.Schema));

    /// <summary>Each table's <c>_offset</c> column, in the order of <see cref="Tables"/> (a child table's is its last).</summary>
    public int[] OffsetColumns => field ??= new[] { OffsetIndex }.Concat(Children.Select(c => c.Schema.Fields.Count - 1)).ToArray();

    public sealed class ChildShape(string path, string table, int number)
    {
        public string Path { get; } = path;

        public string Table { get; } = table;

        public int Number { get; } = number;

        public List<EventField> Fields { get; } = [];

        public int FieldBase { get; internal set; }

        public TableSchema Schema { get; internal set; } = null!;

        /// <summary>Which of the child table's columns are built as UTF-8 text.</summary>
        public bool[] Utf8 { get; internal set; } = [];

        /// <summary>The column of the element's position in its array (before the element's fields).</summary>
        public int IndexColumn => FieldBase - 1;

        /// <summary>The column of the parent's time.</summary>
        public int TimeColumn => FieldBase - 2;

        internal Node Root { get; set; } = null!;
    }

    /// <summary>What one version declares, as column sets of the merged tables.</summary>
    public sealed class VersionShape
    {
        internal VersionShape(StreamShape shape, EventSchemaVersion version)
        {
            Version = version.Version;
            Known = new bool[shape.Main.Fields.Count];
            Required = [];
            Conditions = [];
            foreach (var f in version.Fields)
            {
                var index = shape.Main.IndexOf(f.Column);
                Known[index] = true;
                if (f.Required) { Required.Add((index, f.Path)); }
                if (f.RequiredWhen is { } when) { Conditions.Add((index, f.Path, shape.Main.IndexOf(EventField.ColumnName(when.Field)), new HashSet<string>(when.Values, StringComparer.Ordinal), when)); }
            }

            ChildKnown = new bool[shape.Children.Count];
            ChildRequired = [];
            ChildFieldKnown = new bool[shape.Children.Count][];
            ChildFieldRequired = new List<(int, string)>[shape.Children.Count];
            foreach (var c in shape.Children)
            {
                var declared = version.Children.FirstOrDefault(x => x.Path == c.Path);
                ChildFieldKnown[c.Number] = new bool[c.Schema.Fields.Count];
                ChildFieldRequired[c.Number] = [];
                if (declared is null) { continue; }
                ChildKnown[c.Number] = true;
                if (declared.Required) { ChildRequired.Add(c.Number); }
                foreach (var f in declared.Fields)
                {
                    var index = c.Schema.IndexOf(f.Column);
                    ChildFieldKnown[c.Number][index] = true;
                    if (f.Required) { ChildFieldRequired[c.Number].Add((index, f.Path)); }
                }
            }
        }

        public int Version { get; }

        internal bool[] Known { get; }

        internal List<(int Index, string Path)> Required { get; }

        internal List<(int Index, string Path, int When, HashSet<string> Values, FieldCondition Condition)> Conditions { get; }

        internal bool[] ChildKnown { get; }

        internal List<int> ChildRequired { get; }

        internal bool[][] ChildFieldKnown { get; }

        internal List<(int Index, string Path)>[] ChildFieldRequired { get; }
    }
}

internal enum NodeKind
{
    Object,
    Field,
    Version,
    Tenant,
    Child,
}

/// <summary>A level of the JSON property tree: names (UTF-8, compared without allocating) to fields, objects or arrays.</summary>
internal sealed class Node
{
    private readonly List<(byte[] Name, Entry Entry)> _entries = [];

    /// <summary>
    /// The entries again by name length: a lookup compares only names as long as the one read, one or two, and first by
    /// their first eight bytes as one number (all of most names).
    /// </summary>
    private (ulong Head, byte[] Name, Entry Entry)[][] _byLength = [];

    public sealed record Entry(NodeKind Kind, int Index, EventField? Field, Node? Children, HashSet<string>? Values, string Path)
    {
        /// <summary>The allowed values as UTF-8, in the order of <see cref="EventField.Values"/>.</summary>
        public byte[][]? Utf8Values { get; } = Field?.Values?.Select(v => Encoding.UTF8.GetBytes(v)).ToArray();

        /// <summary>Read even when only validating: the dedup key and fields that conditions look at.</summary>
        public bool Needed { get; set; }

        /// <summary>A text field's number among the stream's text fields (its string cache), or -1.</summary>
        public int StringSlot { get; set; } = -1;

        /// <summary>A main-table text field built as UTF-8: its bytes are copied, no string made.</summary>
        public bool Utf8 { get; set; }
    }

    /// <summary>Marks the fields at and below this level whose column <paramref name="utf8"/> says is UTF-8 text.</summary>
    public void MarkUtf8(bool[] utf8)
    {
        foreach (var (_, e) in _entries)
        {
            if (e.Kind == NodeKind.Field && e.Index < utf8.Length) { e.Utf8 = utf8[e.Index]; }
            e.Children?.MarkUtf8(utf8);
        }
    }

    /// <summary>Numbers the text fields (not enumerations) at and below this level.</summary>
    public void NumberStrings(ref int next)
    {
        foreach (var (_, e) in _entries)
        {
            if (e.Kind == NodeKind.Field && e.Field!.Type == FieldType.String && e.Field.Values is null) { e.StringSlot = next++; }
            e.Children?.NumberStrings(ref next);
        }
    }

    public void Add(string[] path, NodeKind kind, int index, EventField? field)
    {
        var node = this;
        for (var i = 0; i < path.Length - 1; i++)
        {
            var name = Encoding.UTF8.GetBytes(path[i]);
            var found = node._entries.FirstOrDefault(e => e.Name.AsSpan().SequenceEqual(name));
            if (found.Entry is null)
            {
                found = (name, new Entry(NodeKind.Object, -1, null, new Node(), null, string.Join('.', path[..(i + 1)])));
                node.Insert(found);
            }

            node = found.Entry.Children!;
        }

        var leaf = Encoding.UTF8.GetBytes(path[^1]);
        if (node._entries.Any(e => e.Name.AsSpan().SequenceEqual(leaf)))
        {
            return;
        }

        var values = field?.Values is { } v ? new HashSet<string>(v, StringComparer.Ordinal) : null;
        node.Insert((leaf, new Entry(kind, index, field, null, values, string.Join('.', path))));
    }

    private void Insert((byte[] Name, Entry Entry) entry)
    {
        _entries.Add(entry);
        var length = entry.Name.Length;
        if (length >= _byLength.Length)
        {
            var grown = new (ulong, byte[], Entry)[length + 1][];
            Array.Fill(grown, []);
            _byLength.CopyTo(grown, 0);
            _byLength = grown;
        }

        _byLength[length] = [.. _byLength[length], (Head(entry.Name), entry.Name, entry.Entry)];
    }

    /// <summary>
    /// A name's first eight bytes as one number. Only names of one length are compared, so a shorter name may overlap
    /// its two halves: every byte is in the number, each at a place fixed by the length.
    /// </summary>
    private static ulong Head(ReadOnlySpan<byte> name)
    {
        var n = name.Length;
        if (n >= 8) { return BinaryPrimitives.ReadUInt64LittleEndian(name); }
        if (n >= 4) { return ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(name[(n - 4)..]) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(name); }
        ulong head = 0;
        for (var i = n - 1; i >= 0; i--) { head = (head << 8) | name[i]; }
        return head;
    }

    /// <summary>Marks the field at a dotted path as one whose value validation needs.</summary>
    public void MarkNeeded(string[] path)
    {
        var node = this;
        for (var i = 0; i < path.Length; i++)
        {
            var name = Encoding.UTF8.GetBytes(path[i]);
            var found = node._entries.FirstOrDefault(e => e.Name.AsSpan().SequenceEqual(name)).Entry;
            if (found is null) { return; }
            if (i == path.Length - 1) { found.Needed = true; return; }
            node = found.Children;
            if (node is null) { return; }
        }
    }

    public Entry? Find(ReadOnlySpan<byte> name)
    {
        if (name.Length >= _byLength.Length)
        {
            return null;
        }

        var head = Head(name);
        foreach (var (h, n, e) in _byLength[name.Length])
        {
            // Names are as long as each other: equal heads are equal names up to eight bytes.
            if (h == head && (name.Length <= 8 || name[8..].SequenceEqual(n.AsSpan(8)))) { return e; }
        }

        return null;
    }
}
