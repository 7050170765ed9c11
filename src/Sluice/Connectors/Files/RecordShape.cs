using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>A file type's fields prepared for fast lookup by UTF-8 name while parsing.</summary>
internal sealed class RecordShape
{
    private readonly byte[][] _utf8Names;
    private readonly Dictionary<string, int>? _byName;

    public RecordShape(FileType type)
    {
        Type = type;
        // The parsed fields only: lineage columns are added when a batch is handed out (IngestRun.Flush).
        Schema = new TableSchema(type.Table, type.Fields);
        Fields = type.Fields;
        Reads = type.Fields.Select((_, i) => type.ReadOf(i)).ToList();
        // Records are matched by the names fields have in the file; the batch's columns are named as in the table.
        _utf8Names = Reads.Select(r => Encoding.UTF8.GetBytes(r.Source)).ToArray();
        EventTimeIndex = Schema.IndexOf(type.EventTime);
        Strings = type.Fields.Select(f => f.Type == FieldType.String ? new Core.Text.Utf8StringCache() : null).ToList();
        if (Fields.Count > 12)
        {
            _byName = Reads.Select((r, i) => (r.Source, i)).ToDictionary(p => p.Source, p => p.i, StringComparer.Ordinal);
        }
    }

    public FileType Type { get; }

    /// <summary>Per field, a cache of recent string values (null for non-string fields); one shape serves one reader.</summary>
    public IReadOnlyList<Core.Text.Utf8StringCache?> Strings { get; }

    public TableSchema Schema { get; }

    public IReadOnlyList<FieldSpec> Fields { get; }

    /// <summary>Per field, its name in the file and how its value is read.</summary>
    public IReadOnlyList<FieldRead> Reads { get; }

    public int EventTimeIndex { get; }

    /// <summary>The field index for a property name (as in the file), or -1 when the file type does not know it (such properties are ignored).</summary>
    public int Find(ReadOnlySpan<byte> utf8Name)
    {
        if (_byName is not null)
        {
            return _byName.TryGetValue(Encoding.UTF8.GetString(utf8Name), out var i) ? i : -1;
        }

        for (var i = 0; i < _utf8Names.Length; i++)
        {
            if (utf8Name.SequenceEqual(_utf8Names[i]))
            {
                return i;
            }
        }

        return -1;
    }

    public int Find(string name)
    {
        for (var i = 0; i < Fields.Count; i++)
        {
            if (string.Equals(Reads[i].Source, name, StringComparison.Ordinal)) { return i; }
        }

        return -1;
    }
}
