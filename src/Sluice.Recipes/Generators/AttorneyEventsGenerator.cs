using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Sluice.Recipes.Generators;

/// <summary>Options of <c>sluice generate repeat-reminder</c> (and of the reminders benchmark and demo).</summary>
public sealed record AttorneyEventsGeneratorOptions
{
    public int Cases { get; init; } = 100;

    /// <summary>The scenario's "now": closures lie before it, some more than <see cref="Delay"/> before (their reminder is due).</summary>
    public DateTimeOffset Anchor { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>The rule's delay, to place closures before or after their due time (default 30 days).</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.FromDays(30);

    /// <summary>Share of cases closed more than <see cref="Delay"/> before the anchor (their reminder is due, if kept).</summary>
    public double DueShare { get; init; } = 0.5;

    /// <summary>Share of cases whose Salesforce verdict is "Likely to Repeat" with a score of at least 0.7.</summary>
    public double LikelyShare { get; init; } = 0.7;

    /// <summary>Share of likely cases withdrawn by a later "Not Likely" verdict before the due time.</summary>
    public double WithdrawnShare { get; init; } = 0.1;

    /// <summary>Share of cases with an additional purchase after the closure.</summary>
    public double PurchaseShare { get; init; } = 0.05;

    /// <summary>Share of events sent twice.</summary>
    public double DuplicateShare { get; init; } = 0.02;

    /// <summary>Share of events broken on purpose (no attorney_email, an unreadable timestamp, a score that is not a number).</summary>
    public double BadShare { get; init; }

    /// <summary>Extra events per case beyond the closure and the first verdict, on average (default 1: three events per case).</summary>
    public double ExtraEventsPerCase { get; init; } = 1;

    public int Clients { get; init; } = 50;

    public int Attorneys { get; init; } = 20;

    /// <summary>The attorneys' mail domain (default <c>example.test</c>).</summary>
    public string Domain { get; init; } = "example.test";

    /// <summary>Prefix of case ids, so that several generated sets do not collide (default <c>CASE</c>).</summary>
    public string CasePrefix { get; init; } = "CASE";

    /// <summary>The first record id (<c>salesforce_object_id</c>, <c>_id</c>) minus one, so that several generated sets do not collide (default 0).</summary>
    public long FirstId { get; init; }

    public int? Seed { get; init; }
}

/// <summary>One generated event: the stream it belongs to (<c>salesforce</c> or <c>mongo</c>), its client, and its JSON in that source's shape.</summary>
public readonly record struct GeneratedEvent(string Stream, string Client, byte[] Json);

/// <summary>
/// Salesforce-shaped and Mongo-shaped events in the seed's layouts, telling the stories the rule cares about: a
/// service closure and a likely-to-repeat verdict in either order, verdicts withdrawn before the due time, additional
/// purchases, notes, duplicates and broken events. Deterministic for a seed.
/// </summary>
public sealed class AttorneyEventsGenerator(AttorneyEventsGeneratorOptions options)
{
#pragma warning disable CA5394 // Sample data, not security: a seeded generator makes runs repeatable.
    private readonly Random _random = options.Seed is { } s ? new Random(s) : new Random();
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private long _ids = options.FirstId;

    public AttorneyEventsGeneratorOptions Options => options;

    /// <summary>Every case's events, case by case; <paramref name="caseDone"/> is called after each case's (for progress).</summary>
    public IEnumerable<GeneratedEvent> Events(Action? caseDone = null)
    {
        for (var i = 0; i < options.Cases; i++)
        {
            foreach (var e in Case(i))
            {
                yield return e;
                if (_random.NextDouble() < options.DuplicateShare) { yield return e; }
            }

            caseDone?.Invoke();
        }
    }

    public IEnumerable<GeneratedEvent> Case(int index)
    {
        var caseId = string.Create(CultureInfo.InvariantCulture, $"{options.CasePrefix}-{index:D7}");
        var client = string.Create(CultureInfo.InvariantCulture, $"CLIENT-{index % options.Clients:D4}");
        var attorney = string.Create(CultureInfo.InvariantCulture, $"attorney{index % options.Attorneys:D3}@{options.Domain}");
        var due = _random.NextDouble() < options.DueShare;
        var closure = due
            ? options.Anchor - options.Delay - TimeSpan.FromMinutes(_random.Next(1, 10 * 24 * 60))
            : options.Anchor - TimeSpan.FromMinutes(_random.Next(1, (int)Math.Max(2, options.Delay.TotalMinutes)));
        yield return Mongo(caseId, client, attorney, "service_closure", closure);

        var likely = _random.NextDouble() < options.LikelyShare;
        var verdictAt = closure + TimeSpan.FromMinutes(_random.Next(-5 * 24 * 60, 5 * 24 * 60));
        yield return Salesforce(caseId, client, attorney, "attorney actions", verdictAt, likely ? "Likely to Repeat" : "Not Likely", likely ? 0.7 + (_random.NextDouble() * 0.3) : _random.NextDouble() * 0.7);
        var extra = options.ExtraEventsPerCase;
        if (likely && _random.NextDouble() < options.WithdrawnShare)
        {
            yield return Salesforce(caseId, client, attorney, "attorney actions", Max(verdictAt, closure) + TimeSpan.FromDays(_random.Next(1, 20)), "Not Likely", 0.2);
            extra -= 1;
        }

        if (_random.NextDouble() < options.PurchaseShare)
        {
            yield return Salesforce(caseId, client, attorney, "additional_purchase", closure + TimeSpan.FromDays(_random.Next(1, 25)), "Purchased", 1.0);
            extra -= 1;
        }

        for (var n = 0; n < Count(extra); n++)
        {
            yield return _random.Next(2) == 0
                ? Mongo(caseId, client, attorney, "note", closure - TimeSpan.FromDays(_random.Next(1, 60)))
                : Salesforce(caseId, client, attorney, "attorney actions", verdictAt - TimeSpan.FromDays(_random.Next(1, 30)), "In Progress", _random.NextDouble());
        }
    }

    private int Count(double expected)
    {
        if (expected <= 0) { return 0; }
        var whole = (int)expected;
        return whole + (_random.NextDouble() < expected - whole ? 1 : 0);
    }

    private GeneratedEvent Salesforce(string caseId, string client, string attorney, string type, DateTimeOffset at, string status, double score)
    {
        var bad = _random.NextDouble() < options.BadShare ? _random.Next(3) : -1;
        _buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(_buffer))
        {
            w.WriteStartObject();
            w.WriteString("source", "salesforce");
            w.WriteString("salesforce_object_id", string.Create(CultureInfo.InvariantCulture, $"00Q{Interlocked.Increment(ref _ids):D12}"));
            w.WriteString("event_type", type);
            w.WriteString("timestamp", bad == 1 ? "last tuesday" : Iso(at));
            w.WriteString("case_id", caseId);
            w.WriteString("client_id", client);
            if (bad != 0) { w.WriteString("attorney_email", attorney); }
            w.WriteStartObject("attributes");
            w.WriteString("status", status);
            if (bad == 2) { w.WriteString("confidence_score", "high"); } else { w.WriteNumber("confidence_score", Math.Round(score, 3)); }
            w.WriteString("case_type", "Immigration");
            w.WriteString("Case_last_action", "Called the client");
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return new GeneratedEvent("salesforce", client, _buffer.WrittenSpan.ToArray());
    }

    private GeneratedEvent Mongo(string caseId, string client, string attorney, string type, DateTimeOffset at)
    {
        var bad = _random.NextDouble() < options.BadShare ? _random.Next(2) : -1;
        _buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(_buffer))
        {
            w.WriteStartObject();
            w.WriteString("source", "Mongo");
            w.WriteString("_id", string.Create(CultureInfo.InvariantCulture, $"64b{Interlocked.Increment(ref _ids):x13}"));
            w.WriteString("type", type);
            w.WriteString("event_timestamp", bad == 1 ? "21/07/2025" : Iso(at));
            w.WriteString("case_id", caseId);
            w.WriteString("client_id", client);
            if (bad != 0) { w.WriteString("attorney_email", attorney); }
            w.WriteString("status", type == "service_closure" ? "closed" : "open");
            w.WriteNumber("confidence_score", 0.5);
            w.WriteString("case_type", "Immigration");
            w.WriteString("case_last_action", type == "service_closure" ? "Closed the file" : "Added a note");
            w.WriteEndObject();
        }

        return new GeneratedEvent("mongo", client, _buffer.WrittenSpan.ToArray());
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
