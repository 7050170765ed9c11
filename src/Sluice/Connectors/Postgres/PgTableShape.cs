using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// The rows of one source table as they leave the source: the table's columns as Postgres describes them now (a column
/// added while streaming appears from its first change on), then <c>_op</c> (<c>r</c> snapshot read, <c>c</c> insert,
/// <c>u</c> update, <c>d</c> delete) and <c>_lsn</c> (the commit's WAL position: a version that only grows).
/// </summary>
internal sealed class PgTableShape
{
    public const string OpColumn = "_op";
    public const string LsnColumn = "_lsn";

    public PgTableShape(CdcTable table, IReadOnlyList<(string Name, FieldType Type)> columns, int capacity = 256)
    {
        Table = table;
        Types = columns.Select(c => c.Type).ToArray();
        Schema = new TableSchema(table.Name, columns.Select(c => new FieldSpec(c.Name, c.Type, false))
            .Append(new FieldSpec(OpColumn, FieldType.String, true))
            .Append(new FieldSpec(LsnColumn, FieldType.Integer, true)).ToList());
        Builder = new ColumnBatchBuilder(Schema, capacity);
    }

    public CdcTable Table { get; }

    public TableSchema Schema { get; }

    public FieldType[] Types { get; }

    public ColumnBatchBuilder Builder { get; }

    public int ColumnCount => Types.Length;

    /// <summary>Sets a column from Postgres text; false when the text is not a value of the column's type.</summary>
    public bool Set(int column, string text) => PgTypes.Set(Builder[column], Types[column], text);

    public bool Set(int column, ReadOnlySpan<byte> utf8) => PgTypes.Set(Builder[column], Types[column], utf8);

    public void Commit(string op, long lsn)
    {
        ((TypedColumnBuilder<string>)Builder[Types.Length]).Set(op);
        ((ValueColumnBuilder<long>)Builder[Types.Length + 1]).Set(lsn);
        Builder.CommitRow();
    }

    public bool SameColumns(IReadOnlyList<(string Name, FieldType Type)> columns) =>
        columns.Count == Types.Length && columns.Select((c, i) => c.Name == Schema.Fields[i].Name && c.Type == Types[i]).All(b => b);
}
