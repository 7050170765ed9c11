using Sluice.Core.Schema;

namespace Sluice.Transforms;

/// <summary>
/// A table's columns taken apart to rename, replace, add and drop some, then put back together: untouched columns are
/// shared, not copied (batches never change once built), and keep their UTF-8 text and verbatim values.
/// </summary>
internal sealed class TableEdit
{
    private readonly List<FieldSpec> _fields = [];
    private readonly List<Array?> _values = [];
    private readonly List<Utf8Column?> _text = [];
    private readonly List<string?[]?> _verbatim = [];
    private readonly List<string> _key;

    public TableEdit(ColumnBatch table)
    {
        ArgumentNullException.ThrowIfNull(table);
        Table = table.Schema.Table;
        Count = table.Count;
        _key = [.. table.Schema.Key];
        for (var i = 0; i < table.Schema.Fields.Count; i++)
        {
            _fields.Add(table.Schema.Fields[i]);
            var text = table.Text(i);
            _text.Add(text);
            _values.Add(text is null ? table.Columns[i] : null);
            _verbatim.Add(table.Verbatim(i));
        }
    }

    public string Table { get; set; }

    public int Count { get; }

    public IReadOnlyList<FieldSpec> Fields => _fields;

    public int IndexOf(string name) => _fields.FindIndex(f => f.Name == name);

    public void Rename(int index, string name)
    {
        var old = _fields[index].Name;
        _fields[index] = _fields[index] with { Name = name };
        for (var k = 0; k < _key.Count; k++) { if (_key[k] == old) { _key[k] = name; } }
    }

    /// <summary>Sets the column <paramref name="name"/> (replaced where it stands, else added before the change envelope and the pipeline's own columns).</summary>
    public void Set(string name, FieldType type, Array values)
    {
        var at = IndexOf(name);
        if (at < 0)
        {
            at = _fields.FindIndex(f => f.Name.StartsWith('_'));
            if (at < 0) { at = _fields.Count; }
            _fields.Insert(at, new FieldSpec(name, type, false));
            _values.Insert(at, values);
            _text.Insert(at, null);
            _verbatim.Insert(at, null);
            return;
        }

        _fields[at] = new FieldSpec(name, type, false);
        _values[at] = values;
        _text[at] = null;
        _verbatim[at] = null;
    }

    public void Remove(int index)
    {
        _key.Remove(_fields[index].Name);
        _fields.RemoveAt(index);
        _values.RemoveAt(index);
        _text.RemoveAt(index);
        _verbatim.RemoveAt(index);
    }

    public ColumnBatch Build() =>
        new(new TableSchema(Table, [.. _fields]) { Key = [.. _key] }, [.. _values], _text.Any(t => t is not null) ? [.. _text] : null, Count, [.. _verbatim]);
}
