namespace Sluice.Core.Schema;

public static class ColumnArrays
{
    /// <summary>Picks the rows at <paramref name="rows"/> out of a column.</summary>
    public static Array Gather(Array column, ReadOnlySpan<int> rows)
    {
        ArgumentNullException.ThrowIfNull(column);
        switch (column)
        {
            case string?[] s: return GatherTyped(s, rows);
            case DateTime?[] t: return GatherTyped(t, rows);
            case long?[] l: return GatherTyped(l, rows);
            case double?[] d: return GatherTyped(d, rows);
            case bool?[] b: return GatherTyped(b, rows);
            case DateOnly?[] d: return GatherTyped(d, rows);
            default:
                var result = Array.CreateInstance(column.GetType().GetElementType()!, rows.Length);
                for (var i = 0; i < rows.Length; i++) { result.SetValue(column.GetValue(rows[i]), i); }
                return result;
        }
    }

    private static T[] GatherTyped<T>(T[] source, ReadOnlySpan<int> rows)
    {
        var result = new T[rows.Length];
        for (var i = 0; i < rows.Length; i++) { result[i] = source[rows[i]]; }
        return result;
    }
}
