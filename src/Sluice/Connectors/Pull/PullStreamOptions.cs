using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Pull;

/// <summary>
/// Options of an incremental pull that hands its rows to a pipeline's sinks (<c>postgres_pull</c> or <c>salesforce</c>
/// without <c>mapping:</c>): how often it polls, how far below the newest stamp it reads again, and the columns its
/// batches hold. Validated at load.
/// </summary>
public sealed class PullStreamOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PullStreamOptions Default = new();

    /// <summary>Pause between pulls.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How far below the newest stamp handed on each pull reads again, for late commits and clock skew.</summary>
    public TimeSpan Overlap { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The batch table's name (the sinks' <c>tables:</c> rename it).</summary>
    public string Table { get; init; } = "";

    /// <summary>
    /// The record's fields taken as typed columns (<c>columns: {Case_Id__c: string, Score__c: double}</c>, names matched
    /// without regard to case); none: the whole record as JSON text in <c>_record</c>. A value that does not convert
    /// dead-letters its record with the field and the reason.
    /// </summary>
    public IReadOnlyList<FieldSpec> Columns { get; init; } = [];

    public static PullStreamOptions Parse(ConfigMap map, string table)
    {
        ArgumentNullException.ThrowIfNull(map);
        var poll = map.Duration("poll_interval", Default.PollInterval, doc: "Pause between pulls.");
        var overlap = map.Duration("overlap", Default.Overlap, doc: "How far below the newest stamp handed on each pull reads again, for late commits and clock skew.");
        if (poll <= TimeSpan.Zero) { map.Error("poll_interval", "must be more than 0"); }
        if (overlap > TimeSpan.FromDays(7)) { map.Error("overlap", "must be at most 7 days"); }
        var columns = new List<FieldSpec>();
        if (map.Map("columns", doc: "The record's fields taken as typed columns (`columns: {Case_Id__c: string, Score__c: double}`, names matched without regard to case); none: the whole record as JSON text in `_record`. A value that does not convert dead-letters its record with the field and the reason.") is { } declared)
        {
            foreach (var name in declared.Keys.ToList())
            {
                var text = declared.String(name) ?? "";
                if (!FieldTypes.TryParse(text, out var type)) { declared.Error(name, $"'{text}' is not a column type (string, integer, double, boolean, timestamp or date)"); }
                else if (PulledRows.Reserved.Contains(name)) { declared.Error(name, $"'{name}' is a column every pulled row has already ({string.Join(", ", PulledRows.Reserved)})"); }
                else { columns.Add(new FieldSpec(name, type, false)); }
            }

            declared.Done();
        }

        return new PullStreamOptions { PollInterval = poll, Overlap = overlap, Table = table, Columns = columns };
    }
}
