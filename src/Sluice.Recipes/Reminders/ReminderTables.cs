using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// The recipe's warehouse tables (the seed's <c>source_event</c>, <c>attorney_events_raw</c>, <c>attorney_reminder</c>):
/// the same columns in the lake (partitioned by day) and in PostgreSQL. <c>client_key</c> is a keyed hash of the
/// client id (joins and tenant filters use it); <c>client_id</c>, <c>attorney_email</c> and <c>payload</c> hold ciphertext.
/// </summary>
public static class ReminderTables
{
    public const string SourceEvent = "source_event";
    public const string AttorneyEvents = "attorney_events";
    public const string AttorneyReminder = "attorney_reminder";
    public const string ReadyView = "vw_reminder_ready";

    /// <summary>Every record as received, mapped or not: <c>payload</c> is the encrypted JSON, <c>error</c> why it was rejected.</summary>
    public static IReadOnlyList<FieldSpec> SourceEventColumns { get; } =
    [
        new("source", FieldType.String, true),
        new("source_id", FieldType.String, false),
        new("client_key", FieldType.String, false),
        new("received_at", FieldType.Timestamp, true),
        new("position", FieldType.String, true),
        new("payload", FieldType.String, true),
        new("error", FieldType.String, false),
    ];

    /// <summary>Every mapped event, duplicates included (evaluation is robust to them).</summary>
    public static IReadOnlyList<FieldSpec> AttorneyEventColumns { get; } =
    [
        new("source", FieldType.String, true),
        new("source_id", FieldType.String, true),
        new("event_type", FieldType.String, true),
        new("occurred_at", FieldType.Timestamp, true),
        new("case_id", FieldType.String, true),
        new("client_key", FieldType.String, true),
        new("client_id", FieldType.String, false),
        new("attorney_email", FieldType.String, true),
        new("status", FieldType.String, false),
        new("confidence_score", FieldType.Double, false),
        new("case_type", FieldType.String, false),
        new("last_action", FieldType.String, false),
        new("received_at", FieldType.Timestamp, true),
    ];

    /// <summary>The sent log: one row per outcome of a reminder (sent, failed, unconfirmed, withdrawn, requeued); the latest row per key is its state.</summary>
    public static IReadOnlyList<FieldSpec> AttorneyReminderColumns { get; } =
    [
        new("reminder_key", FieldType.String, true),
        new("rule", FieldType.String, true),
        new("client_key", FieldType.String, true),
        new("case_id", FieldType.String, true),
        new("occurrence", FieldType.Integer, true),
        new("closure_at", FieldType.Timestamp, true),
        new("due_at", FieldType.Timestamp, true),
        new("status", FieldType.String, true),
        new("recorded_at", FieldType.Timestamp, true),
        new("attempts", FieldType.Integer, true),
        new("message_id", FieldType.String, true),
        new("detail", FieldType.String, false),
    ];

    public const string DayColumn = "day";

    public static LakeTable Lake(string zone, string name) => name switch
    {
        SourceEvent => new LakeTable(zone, SourceEvent, DayColumn, FieldType.Date, SourceEventColumns),
        AttorneyEvents => new LakeTable(zone, AttorneyEvents, DayColumn, FieldType.Date, AttorneyEventColumns),
        AttorneyReminder => new LakeTable(zone, AttorneyReminder, DayColumn, FieldType.Date, AttorneyReminderColumns),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };
}
