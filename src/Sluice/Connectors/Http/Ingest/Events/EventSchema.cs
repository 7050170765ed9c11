using Sluice.Core.Schema;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// One declared field of an event, addressed by its dotted path in the JSON (<c>customer.email</c>) and stored in the
/// column named by the path with dots turned into underscores (<c>customer_email</c>).
/// </summary>
/// <param name="Values">Allowed values of a text field (an enumeration), or null for any text.</param>
/// <param name="RequiredWhen">The field is required when another top-level text field has one of some values (<c>order.total</c> for purchases).</param>
/// <param name="Pii">Stored as a keyed hash in analytics tables; raw only in the landing log.</param>
public sealed record EventField(string Path, FieldType Type, bool Required, bool Pii, IReadOnlyList<string>? Values, FieldCondition? RequiredWhen)
{
    public string Column => ColumnName(Path);

    public static string ColumnName(string path) => path.Replace('.', '_');
}

/// <summary><c>field=a|b</c>: true when the event's text field <see cref="Field"/> is one of <see cref="Values"/>.</summary>
public sealed record FieldCondition(string Field, IReadOnlyList<string> Values)
{
    public override string ToString() => $"{Field}={string.Join('|', Values)}";
}

/// <summary>An array of objects inside the event (<c>items</c>), flattened into a child table keyed by the parent's key and the element's index.</summary>
public sealed record EventChild(string Path, string Table, bool Required, IReadOnlyList<EventField> Fields);

/// <summary>One <c>schema_version</c> of a stream: its fields and child arrays.</summary>
public sealed record EventSchemaVersion(int Version, string File, IReadOnlyList<EventField> Fields, IReadOnlyList<EventChild> Children);
