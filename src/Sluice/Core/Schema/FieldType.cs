namespace Sluice.Core.Schema;

/// <summary>
/// The column types a record field can have. Timestamps are instants, stored in UTC. <see cref="Decimal"/> is an exact
/// number carried as its text (<c>string?[]</c>: <c>-12.50</c>, <c>NaN</c>, <c>Infinity</c>), with the precision and scale
/// of its <see cref="FieldSpec"/> (0: unbounded); only sources that know exact numbers (Postgres CDC) make it.
/// </summary>
public enum FieldType
{
    String,
    Integer,
    Double,
    Boolean,
    Timestamp,
    Date,
    Decimal,
}

public static class FieldTypes
{
    public static bool TryParse(string text, out FieldType type)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "string" or "text" or "varchar": type = FieldType.String; return true;
            case "integer" or "int" or "long" or "bigint": type = FieldType.Integer; return true;
            case "double" or "float" or "number" or "decimal": type = FieldType.Double; return true;
            case "boolean" or "bool": type = FieldType.Boolean; return true;
            case "timestamp" or "datetime": type = FieldType.Timestamp; return true;
            case "date": type = FieldType.Date; return true;
            default: type = FieldType.String; return false;
        }
    }

    public static FieldType Parse(string text) =>
        TryParse(text, out var type) ? type : throw new FormatException($"unknown field type '{text}' (expected string, integer, double, boolean, timestamp or date)");

    /// <summary>The type's name; <see cref="FieldType.Decimal"/> is <c>numeric</c>, as "decimal" in a file type means a double.</summary>
    public static string Name(this FieldType type) => type == FieldType.Decimal ? "numeric" : type.ToString().ToLowerInvariant();

    public static string DuckDbType(this FieldType type) => type switch
    {
        FieldType.String => "VARCHAR",
        FieldType.Integer => "BIGINT",
        FieldType.Double => "DOUBLE",
        FieldType.Boolean => "BOOLEAN",
        FieldType.Timestamp => "TIMESTAMPTZ",
        FieldType.Date => "DATE",
        FieldType.Decimal => "VARCHAR",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static string PostgresType(this FieldType type) => type switch
    {
        FieldType.String => "text",
        FieldType.Integer => "bigint",
        FieldType.Double => "double precision",
        FieldType.Boolean => "boolean",
        FieldType.Timestamp => "timestamptz",
        FieldType.Date => "date",
        FieldType.Decimal => "numeric",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}

public static class FieldSpecs
{
    /// <summary>
    /// A decimal with a declared precision of 1 to 38: what a 128-bit decimal holds (Parquet DECIMAL, ClickHouse
    /// Decimal, DuckDB DECIMAL). An unbounded one (or one of more digits) is kept as text by those stores.
    /// </summary>
    public static bool IsDecimal128(this FieldSpec field) => field is { Type: FieldType.Decimal, Precision: > 0 and <= 38 };

    /// <summary>A field's type as stored in the metadata: <see cref="FieldTypes.Name"/>, or <c>numeric(P,S)</c> for a decimal with a precision.</summary>
    public static string TypeText(this FieldSpec field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return field.Type == FieldType.Decimal ? field.PostgresType() : field.Type.Name();
    }

    /// <summary>A field from its name and <see cref="TypeText"/>.</summary>
    public static FieldSpec FromTypeText(string name, string typeText, bool required)
    {
        ArgumentNullException.ThrowIfNull(typeText);
        if (!typeText.StartsWith("numeric", StringComparison.Ordinal)) { return new FieldSpec(name, FieldTypes.Parse(typeText), required); }
        var digits = typeText["numeric".Length..].Trim('(', ')').Split(',', StringSplitOptions.RemoveEmptyEntries);
        return digits.Length == 2
            ? new FieldSpec(name, FieldType.Decimal, required, int.Parse(digits[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(digits[1], System.Globalization.CultureInfo.InvariantCulture))
            : new FieldSpec(name, FieldType.Decimal, required);
    }

    /// <summary>The Postgres column type of a field: <c>numeric(P,S)</c> for a decimal with a precision, else <see cref="FieldTypes.PostgresType"/>.</summary>
    public static string PostgresType(this FieldSpec field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return field.Type == FieldType.Decimal && field.Precision > 0
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"numeric({field.Precision},{field.Scale})")
            : field.Type.PostgresType();
    }

    /// <summary>The DuckDB type the lake gives a field: <c>DECIMAL(P,S)</c> for a decimal Parquet holds as such (precision 1-38), else <see cref="FieldTypes.DuckDbType"/>.</summary>
    public static string DuckDbType(this FieldSpec field)
    {
        ArgumentNullException.ThrowIfNull(field);
        return field.IsDecimal128()
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"DECIMAL({field.Precision},{field.Scale})")
            : field.Type.DuckDbType();
    }
}
