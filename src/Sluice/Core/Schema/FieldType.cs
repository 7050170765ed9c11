namespace Sluice.Core.Schema;

/// <summary>The column types a record field can have. Timestamps are instants, stored in UTC.</summary>
public enum FieldType
{
    String,
    Integer,
    Double,
    Boolean,
    Timestamp,
    Date,
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

    public static string Name(this FieldType type) => type.ToString().ToLowerInvariant();

    public static string DuckDbType(this FieldType type) => type switch
    {
        FieldType.String => "VARCHAR",
        FieldType.Integer => "BIGINT",
        FieldType.Double => "DOUBLE",
        FieldType.Boolean => "BOOLEAN",
        FieldType.Timestamp => "TIMESTAMPTZ",
        FieldType.Date => "DATE",
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
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
