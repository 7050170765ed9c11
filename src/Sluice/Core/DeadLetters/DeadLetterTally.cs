namespace Sluice.Core.DeadLetters;

/// <summary>
/// Counts the dead letters added by one piece of work (a command, a job run) and the rows they hold, so its summary can
/// say how much of it did not get through. A tally counts what is added anywhere down the async flow that began it
/// (sink workers and parallel tasks started inside included), and nothing from work running beside it.
/// </summary>
public sealed class DeadLetterTally : IDisposable
{
    private static readonly AsyncLocal<DeadLetterTally?> Current = new();

    private readonly DeadLetterTally? _parent;
    private long _letters;
    private long _rows;

    private DeadLetterTally(DeadLetterTally? parent) => _parent = parent;

    /// <summary>Letters added (new, or a known one pending again) since <see cref="Begin"/>.</summary>
    public long Letters => Interlocked.Read(ref _letters);

    /// <summary>Rows (records, events, requests' rows) those letters hold.</summary>
    public long Rows => Interlocked.Read(ref _rows);

    /// <summary>Starts counting here and below; an enclosing tally keeps counting too.</summary>
    public static DeadLetterTally Begin()
    {
        var tally = new DeadLetterTally(Current.Value);
        Current.Value = tally;
        return tally;
    }

    /// <summary>"30101 rows in 302 dead letters", or null when there were none.</summary>
    public string? Describe() =>
        Letters == 0 ? null : $"{Rows} row{(Rows == 1 ? "" : "s")} in {Letters} dead letter{(Letters == 1 ? "" : "s")}";

    /// <summary>Stops counting below this point (the counts stay readable).</summary>
    public void Dispose()
    {
        if (Current.Value == this) { Current.Value = _parent; }
    }

    internal static void Count(long rows)
    {
        for (var t = Current.Value; t is not null; t = t._parent)
        {
            Interlocked.Increment(ref t._letters);
            Interlocked.Add(ref t._rows, rows);
        }
    }
}
