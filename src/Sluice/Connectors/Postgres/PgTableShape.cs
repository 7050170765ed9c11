using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// The rows of one source table as they leave the source: the table's columns as Postgres describes them now (a column
/// added while streaming appears from its first change on), then the change envelope (<see cref="ChangeEnvelope"/>,
/// docs/CDC.md): <c>_op</c> (<c>r</c> snapshot read, <c>c</c> insert, <c>u</c> update, <c>d</c> delete, <c>t</c>
/// truncate), <c>_lsn</c> (the commit's WAL position) and <c>_seq</c> (the change's place in its transaction), which
/// together order and tell apart every change, <c>_txid</c>, <c>_commit_ts</c>, <c>_before</c> and <c>_unchanged</c>.
/// </summary>
internal sealed class PgTableShape
{
    public const string OpColumn = ChangeEnvelope.Op;
    public const string LsnColumn = ChangeEnvelope.Lsn;

    public PgTableShape(CdcTable table, IReadOnlyList<FieldSpec> columns, int capacity = 256)
    {
        Table = table;
        Types = columns.Select(c => c.Type).ToArray();
        Names = columns.Select(c => c.Name).ToArray();
        Key = table.KeyColumns.Select(k => Array.IndexOf(Names, k)).Where(i => i >= 0).ToArray();
        Schema = new TableSchema(table.BatchName, columns.Select(c => c with { Required = false }).Concat(ChangeEnvelope.Fields).ToList())
        {
            Key = Key.Select(i => Names[i]).ToArray(),
        };
        Builder = new ColumnBatchBuilder(Schema, capacity);
    }

    /// <summary>The table's column names, in order.</summary>
    public string[] Names { get; }

    /// <summary>Indexes of the key columns (primary key, else replica identity index); empty when the table has neither.</summary>
    public int[] Key { get; }

    public CdcTable Table { get; }

    public TableSchema Schema { get; }

    public FieldType[] Types { get; }

    public ColumnBatchBuilder Builder { get; }

    public int ColumnCount => Types.Length;

    /// <summary>Sets a column from Postgres text; false when the text is not a value of the column's type.</summary>
    public bool Set(int column, string text) => PgTypes.Set(Builder[column], Types[column], text);

    public bool Set(int column, ReadOnlySpan<byte> utf8) => PgTypes.Set(Builder[column], Types[column], utf8);

    /// <summary>A snapshot row (or a backfilled one): no transaction, nothing before it.</summary>
    public void Commit(string op, long lsn) => Commit(op, lsn, 0, null, null, null, null);

    public void Commit(string op, long lsn, long seq, long? txid, DateTime? commitTime, string? before, string? unchanged)
    {
        var at = Types.Length;
        ((TypedColumnBuilder<string>)Builder[at]).Set(op);
        ((ValueColumnBuilder<long>)Builder[at + 1]).Set(lsn);
        ((ValueColumnBuilder<long>)Builder[at + 2]).Set(seq);
        if (txid is { } x) { ((ValueColumnBuilder<long>)Builder[at + 3]).Set(x); }
        if (commitTime is { } t) { ((ValueColumnBuilder<DateTime>)Builder[at + 4]).Set(t); }
        if (before is not null) { ((TypedColumnBuilder<string>)Builder[at + 5]).Set(before); }
        if (unchanged is not null) { ((TypedColumnBuilder<string>)Builder[at + 6]).Set(unchanged); }
        Builder.CommitRow();
    }

    /// <summary>True when <paramref name="columns"/> are this shape's (names, types, precision and scale).</summary>
    public bool SameColumns(IReadOnlyList<FieldSpec> columns) =>
        columns.Count == Types.Length && columns.Select((c, i) => c with { Required = false } == Schema.Fields[i]).All(b => b);
}
