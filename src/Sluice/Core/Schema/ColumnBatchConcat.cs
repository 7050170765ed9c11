namespace Sluice.Core.Schema;

public static class ColumnBatchConcat
{
    /// <summary>
    /// Joins neighbouring batches that share a schema object, so many small pieces (one per source transaction) travel
    /// as few tables, while the order between tables is kept: a dimension change stays between the facts before and
    /// after it.
    /// </summary>
    public static List<ColumnBatch> Runs(IEnumerable<ColumnBatch> pieces)
    {
        var groups = new List<(TableSchema Schema, List<ColumnBatch> Parts)>();
        foreach (var piece in pieces)
        {
            if (piece.Count == 0) { continue; }
            if (groups.Count > 0 && ReferenceEquals(groups[^1].Schema, piece.Schema)) { groups[^1].Parts.Add(piece); }
            else { groups.Add((piece.Schema, [piece])); }
        }

        return groups.Select(g => g.Parts.Count == 1 ? g.Parts[0] : Concat(g.Schema, g.Parts)).ToList();
    }

    /// <summary>The rows of <paramref name="parts"/> (all of <paramref name="schema"/>) as one batch, in order; empty when there are none.</summary>
    public static ColumnBatch Join(TableSchema schema, List<ColumnBatch> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        parts.RemoveAll(p => p.Count == 0);
        return parts.Count switch
        {
            0 => new ColumnBatchBuilder(schema, 16).Flush(),
            1 => parts[0],
            _ => Concat(schema, parts),
        };
    }

    private static ColumnBatch Concat(TableSchema schema, List<ColumnBatch> parts)
    {
        var total = parts.Sum(p => p.Count);
        var columns = new Array?[schema.Fields.Count];
        Utf8Column?[]? text = null;
        string?[]?[]? verbatim = null;
        for (var c = 0; c < columns.Length; c++)
        {
            if (parts.Exists(p => p.Verbatim(c) is not null))
            {
                var joined = (verbatim ??= new string?[]?[columns.Length])[c] = new string?[total];
                var from = 0;
                foreach (var part in parts)
                {
                    part.Verbatim(c)?.CopyTo(joined, from);
                    from += part.Count;
                }
            }

            // Text that came as UTF-8 stays UTF-8 when every piece has it so (one copy of bytes, no strings).
            if (parts.TrueForAll(p => p.Text(c) is not null))
            {
                (text ??= new Utf8Column?[columns.Length])[c] = Utf8Column.Concat(parts.ConvertAll(p => p.Text(c)!));
                continue;
            }

            var target = Array.CreateInstance(parts[0].Columns[c].GetType().GetElementType()!, total);
            var at = 0;
            foreach (var part in parts)
            {
                Array.Copy(part.Columns[c], 0, target, at, part.Count);
                at += part.Count;
            }

            columns[c] = target;
        }

        return new ColumnBatch(schema, columns, text, total, verbatim);
    }
}
