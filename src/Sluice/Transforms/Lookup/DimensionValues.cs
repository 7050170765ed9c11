using Sluice.Core.Schema;

namespace Sluice.Transforms.Lookup;

/// <summary>Dimension values as a join hands them on: a changed row's values in the dimension's column types, and columns to fill.</summary>
public static class DimensionValues
{
    /// <summary>A column whose type changed in Postgres after the load keeps the loaded type; values that do not fit become null.</summary>
    public static object? Convert(object? value, FieldType type) => (value, type) switch
    {
        (null, _) => null,
        (long l, FieldType.Integer) => l,
        (double d, FieldType.Integer) => (long)d,
        (long l, FieldType.Double) => (double)l,
        (double d, FieldType.Double) => d,
        (string s, FieldType.String or FieldType.Decimal) => s,
        (_, FieldType.String) => System.Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        (DateTime t, FieldType.Timestamp) => t,
        (bool b, FieldType.Boolean) => b,
        (DateOnly d, FieldType.Date) => d,
        _ => null,
    };

    /// <summary>An empty column of <paramref name="n"/> rows in the array type the batch keeps for <paramref name="type"/>.</summary>
    public static Array ColumnArray(FieldType type, int n) => type switch
    {
        FieldType.String or FieldType.Decimal => new string?[n],
        FieldType.Integer => new long?[n],
        FieldType.Double => new double?[n],
        FieldType.Boolean => new bool?[n],
        FieldType.Timestamp => new DateTime?[n],
        FieldType.Date => new DateOnly?[n],
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
