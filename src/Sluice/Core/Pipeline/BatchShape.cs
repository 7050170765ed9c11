using Sluice.Core.Schema;

namespace Sluice.Core.Pipeline;

/// <summary>A column known at load at one point of a pipeline; <paramref name="Type"/> null when only the data will tell (a derived expression's result).</summary>
public sealed record ShapeColumn(string Name, FieldType? Type);

/// <summary>
/// What is known at load of one batch table at one point of a pipeline: the columns there, the columns known to be gone
/// and why (renamed or dropped by a step), and whether other columns may be there too (<see cref="Open"/>: a source that
/// learns its columns from the data, or a step that makes columns from JSON).
/// </summary>
public sealed record ShapeTable(string Name, IReadOnlyList<ShapeColumn> Columns, bool Open)
{
    /// <summary>Columns known not to be here, with what removed them (<c>renamed to 'total' by steps[0] (map)</c>).</summary>
    public IReadOnlyDictionary<string, string> Gone { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary><paramref name="ignoreCase"/>: as SQL finds a column (DuckDB identifiers are case-insensitive).</summary>
    public ShapeColumn? Find(string column, bool ignoreCase = false) =>
        Columns.FirstOrDefault(c => string.Equals(c.Name, column, ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal));

    /// <summary>Why <paramref name="column"/> is not in this table here; null when it is, or may be.</summary>
    public string? Missing(string column, bool ignoreCase = false)
    {
        ArgumentNullException.ThrowIfNull(column);
        if (Find(column, ignoreCase) is not null) { return null; }
        var gone = Gone.FirstOrDefault(g => string.Equals(g.Key, column, ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal));
        if (gone.Key is not null) { return $"column '{column}' of table '{Name}' is not there any more: it was {gone.Value}"; }
        return Open ? null : $"table '{Name}' has no column '{column}' at this point (its columns: {string.Join(", ", Columns.Select(c => c.Name))})";
    }

    /// <summary>The table with <paramref name="column"/> added, or replacing the one of its name.</summary>
    public ShapeTable With(ShapeColumn column)
    {
        ArgumentNullException.ThrowIfNull(column);
        var columns = Columns.ToList();
        var at = columns.FindIndex(c => c.Name == column.Name);
        if (at >= 0) { columns[at] = column; }
        else { columns.Add(column); }
        var gone = new Dictionary<string, string>(Gone, StringComparer.Ordinal);
        gone.Remove(column.Name);
        return this with { Columns = columns, Gone = gone };
    }

    /// <summary>The table with <paramref name="from"/> renamed <paramref name="to"/> in its place (as the step renames it), remembering why <paramref name="from"/> is gone.</summary>
    public ShapeTable Renamed(string from, string to, string why)
    {
        var column = Find(from) ?? new ShapeColumn(from, null);
        var columns = Columns.Where(c => c.Name != to).ToList();
        var at = columns.FindIndex(c => c.Name == from);
        if (at >= 0) { columns[at] = column with { Name = to }; }
        else { columns.Add(column with { Name = to }); }
        var gone = new Dictionary<string, string>(Gone, StringComparer.Ordinal) { [from] = why };
        gone.Remove(to);
        return this with { Columns = columns, Gone = gone };
    }

    /// <summary>The table without <paramref name="column"/>, remembering <paramref name="why"/> for whoever looks for it later.</summary>
    public ShapeTable Without(string column, string why)
    {
        var gone = new Dictionary<string, string>(Gone, StringComparer.Ordinal) { [column] = why };
        return this with { Columns = Columns.Where(c => c.Name != column).ToList(), Gone = gone };
    }

    /// <summary>The table as a schema for a sink's check of whole tables; null when a column or its type is not known at load.</summary>
    public TableSchema? Schema =>
        Open || Columns.Any(c => c.Type is null) ? null : new TableSchema(Name, Columns.Select(c => new FieldSpec(c.Name, c.Type!.Value, false)).ToList());
}

/// <summary>
/// What is known at load of the tables a pipeline's batches hold at one point: from the source's declared schema (HTTP
/// schemas, file types, a pull's columns; a CDC source's tables only from its server), through each step, to the
/// sinks. <see cref="Other"/> stands for any table not listed: null when the list is complete.
/// </summary>
public sealed class BatchShape
{
    private BatchShape(IReadOnlyList<ShapeTable> tables, ShapeTable? other, string? unknown)
    {
        Tables = tables;
        Other = other;
        Unknown = unknown;
    }

    public IReadOnlyList<ShapeTable> Tables { get; }

    /// <summary>What is known of a table not in <see cref="Tables"/>; null when there is no other table.</summary>
    public ShapeTable? Other { get; }

    /// <summary>Why not every table and column is known here (the first reason met); null when they are.</summary>
    public string? Unknown { get; }

    public static BatchShape Of(IEnumerable<TableSchema> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        return new(tables.Select(t => new ShapeTable(t.Table, t.Fields.Select(f => new ShapeColumn(f.Name, f.Type)).ToList(), false)).ToList(), null, null);
    }

    /// <summary>Nothing is known of the tables (<paramref name="why"/>): only what later steps declare can be checked.</summary>
    public static BatchShape NotKnown(string why) => new([], new ShapeTable("*", [], true), why);

    /// <summary>The table <paramref name="name"/> here: listed, or what is known of any other table; null when there is no such table.</summary>
    public ShapeTable? Table(string name) =>
        Tables.FirstOrDefault(t => t.Name == name) ?? (Other is null ? null : Other with { Name = name });

    /// <summary>Why there is no table <paramref name="name"/> here; null when there is, or may be.</summary>
    public string? MissingTable(string name) =>
        Table(name) is not null ? null : $"no table '{name}' reaches this point (tables: {(Tables.Count == 0 ? "none" : string.Join(", ", Tables.Select(t => t.Name)))})";

    /// <summary>
    /// The shape with <paramref name="edit"/> applied to the tables named (none: every table, the unknown others too),
    /// except <paramref name="except"/>. A named table not listed is taken from <see cref="Other"/> first.
    /// </summary>
    public BatchShape Edit(IReadOnlyList<string> names, Func<ShapeTable, ShapeTable> edit, string? except = null)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(edit);
        var tables = Tables.ToList();
        if (Other is not null)
        {
            tables.AddRange(names.Where(n => tables.All(t => t.Name != n)).Distinct().Select(n => Other with { Name = n }));
        }

        var edited = tables.Select(t => (names.Count == 0 || names.Contains(t.Name)) && t.Name != except ? edit(t) : t).ToList();
        var other = Other is not null && names.Count == 0 ? edit(Other) : Other;
        return new BatchShape(edited, other, Unknown);
    }

    /// <summary>The shape with more tables than are listed (a step that makes child tables from JSON), <paramref name="why"/>.</summary>
    public BatchShape WithOthers(string why) => new(Tables, Other ?? new ShapeTable("*", [], true), Unknown ?? why);
}

/// <summary>The problems a step or sink finds in the shape it is given: each under the key of its options it concerns (<c>where</c>, <c>rename.old</c>).</summary>
public sealed class ShapeProblems(string place)
{
    private readonly List<(string Key, string Message)> _all = [];

    /// <summary>The component's place in its pipeline (<c>steps[0] (map)</c>), for what a later component reads about it.</summary>
    public string Place { get; } = place;

    public IReadOnlyList<(string Key, string Message)> All => _all;

    public void Add(string key, string message)
    {
        if (!_all.Contains((key, message))) { _all.Add((key, message)); }
    }

    /// <summary>Adds a problem when <paramref name="why"/> is not null.</summary>
    public void Add(string key, string what, string? why)
    {
        if (why is not null) { Add(key, $"{what}: {why}"); }
    }
}

/// <summary>A step factory that tells at load what its step does to the tables and columns it is given, and what it needs of them.</summary>
public interface IShapesBatches
{
    BatchShape Shape(BatchShape input, ShapeProblems problems);
}

/// <summary>A sink that checks at load the tables and columns it names against what reaches it (a key template's columns, its <c>table:</c>).</summary>
public interface IChecksBatchShape
{
    void Check(BatchShape input, ShapeProblems problems);
}

/// <summary>A source whose tables' columns are known only from its server (a CDC source): read for <c>validate --connect</c>.</summary>
public interface IConnectedBatchTables
{
    /// <summary>The tables its batches will hold, as the server describes them now; null when the server cannot be asked (the connection check says why).</summary>
    Task<IReadOnlyList<TableSchema>?> ReadBatchTablesAsync(CancellationToken ct);
}
