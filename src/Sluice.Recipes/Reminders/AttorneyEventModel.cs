using Sluice.Core.Schema;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// The common model every source's mapping produces (<c>attorney_event</c>): Salesforce-shaped, Mongo-shaped and any
/// further source look alike after their mapping. The reminder rule reads only these fields.
/// </summary>
public static class AttorneyEventModel
{
    public const int Source = 0;
    public const int SourceId = 1;
    public const int EventType = 2;
    public const int OccurredAt = 3;
    public const int CaseId = 4;
    public const int ClientId = 5;
    public const int AttorneyEmail = 6;
    public const int Status = 7;
    public const int ConfidenceScore = 8;
    public const int CaseType = 9;
    public const int LastAction = 10;

    public static TableSchema Schema { get; } = new("attorney_event",
    [
        new("source", FieldType.String, true),
        new("source_id", FieldType.String, true),
        new("event_type", FieldType.String, true),
        new("occurred_at", FieldType.Timestamp, true),
        new("case_id", FieldType.String, true),
        new("client_id", FieldType.String, true),
        new("attorney_email", FieldType.String, true),
        new("status", FieldType.String, false),
        new("confidence_score", FieldType.Double, false),
        new("case_type", FieldType.String, false),
        new("last_action", FieldType.String, false),
    ]);
}
