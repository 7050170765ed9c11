using Sluice.Core.Schema;
using Sluice.Mapping;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// One record as it arrived: its JSON, when, and where in its source (a log offset, an id and modification stamp);
/// with the tenant a token vouched for, which is then its client id whatever the record says.
/// </summary>
public readonly record struct RawEvent(ReadOnlyMemory<byte> Json, DateTime ReceivedAt, string Position, string? Tenant = null);

/// <summary>A record the mapping refused: where it came from, why, and its payload (encrypted, like every payload at rest).</summary>
public sealed record RejectedEvent(string Position, string Reason, string Payload)
{
    /// <summary>The index of the record among the normalised ones.</summary>
    public int Input { get; init; }
}

/// <summary>What a batch of raw records became: every record for <c>source_event</c>, the mapped ones for <c>attorney_events</c>, and the refused ones.</summary>
public sealed record NormalisedBatch(ColumnBatch SourceEvents, ColumnBatch Events, IReadOnlyList<RejectedEvent> Rejected)
{
    /// <summary>For each row of <see cref="Events"/>, the index of the record it came from (rows of <see cref="SourceEvents"/> are the records, in order).</summary>
    public IReadOnlyList<int> EventInputs { get; init; } = [];

    public int Received => SourceEvents.Count;
}

/// <summary>
/// Maps raw records of one source to the <see cref="AttorneyEventModel"/> and protects them for storage: the client id
/// becomes its keyed hash (and its ciphertext, unless configured to be hashed only), the attorney's address and the
/// whole raw payload become ciphertext. Not thread-safe (it owns a <see cref="RecordMapper"/>): one per worker.
/// </summary>
public sealed class EventNormaliser(RecordMapping mapping, FieldProtector protector, ClientIdProtection clientId)
{
    private readonly RecordMapper _mapper = new(mapping);

    public RecordMapping Mapping => mapping;

    public NormalisedBatch Normalise(IReadOnlyList<RawEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var model = new ColumnBatchBuilder(AttorneyEventModel.Schema, events.Count);
        var rowOf = new int[events.Count];
        var errors = new string?[events.Count];
        var rejected = new List<RejectedEvent>();
        var payloads = new string?[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            payloads[i] = protector.Encrypt(e.Json.Span);
            var issue = _mapper.Map(e.Json.Span, model, AttorneyEventModel.ClientId, e.Tenant);
            if (issue is { } problem)
            {
                rowOf[i] = -1;
                errors[i] = $"{mapping.Name}: {problem}";
                rejected.Add(new RejectedEvent(e.Position, errors[i]!, payloads[i]!) { Input = i });
            }
            else
            {
                rowOf[i] = model.Count - 1;
            }
        }

        var mapped = model.Flush();
        var n = mapped.Count;
        var clients = mapped.Strings(AttorneyEventModel.ClientId);
        var emails = mapped.Strings(AttorneyEventModel.AttorneyEmail);
        var clientKeys = new string?[n];
        var clientCipher = new string?[n];
        var emailCipher = new string?[n];
        var receivedAt = new DateTime?[n];
        var eventInputs = new int[n];
        for (var r = 0; r < n; r++)
        {
            clientKeys[r] = protector.Key(clients[r]!);
            clientCipher[r] = clientId == ClientIdProtection.Encrypt ? protector.EncryptValue(clients[r]!) : null;
            emailCipher[r] = protector.EncryptValue(emails[r]!);
        }

        var sourceIds = mapped.Strings(AttorneyEventModel.SourceId);
        var rawSource = new string?[events.Count];
        var rawId = new string?[events.Count];
        var rawClient = new string?[events.Count];
        var rawReceived = new DateTime?[events.Count];
        var rawPosition = new string?[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            rawSource[i] = mapping.Name;
            rawReceived[i] = events[i].ReceivedAt;
            rawPosition[i] = events[i].Position;
            if (rowOf[i] >= 0)
            {
                rawId[i] = sourceIds[rowOf[i]];
                rawClient[i] = clientKeys[rowOf[i]];
                receivedAt[rowOf[i]] = events[i].ReceivedAt;
                eventInputs[rowOf[i]] = i;
            }
        }

        var sourceEvents = new ColumnBatch(
            new TableSchema(ReminderTables.SourceEvent, ReminderTables.SourceEventColumns),
            [rawSource, rawId, rawClient, rawReceived, rawPosition, payloads, errors], events.Count);
        var eventsBatch = new ColumnBatch(
            new TableSchema(ReminderTables.AttorneyEvents, ReminderTables.AttorneyEventColumns),
            [
                mapped.Columns[AttorneyEventModel.Source], sourceIds, mapped.Columns[AttorneyEventModel.EventType],
                mapped.Columns[AttorneyEventModel.OccurredAt], mapped.Columns[AttorneyEventModel.CaseId], clientKeys, clientCipher, emailCipher,
                mapped.Columns[AttorneyEventModel.Status], mapped.Columns[AttorneyEventModel.ConfidenceScore],
                mapped.Columns[AttorneyEventModel.CaseType], mapped.Columns[AttorneyEventModel.LastAction], receivedAt,
            ], n);
        return new NormalisedBatch(sourceEvents, eventsBatch, rejected) { EventInputs = eventInputs };
    }
}
