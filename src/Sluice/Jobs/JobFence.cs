namespace Sluice.Jobs;

/// <summary>
/// The fencing check of the job run in progress (ambient, like <see cref="Core.DeadLetters.DeadLetterTally"/>): a job
/// wraps its final commit in <see cref="Hold"/>, which, for a run holding a cluster lease, refuses the commit unless the
/// lease is still the run's and keeps it from being taken over until the commit is done. Outside a leased run it does
/// nothing.
/// </summary>
public static class JobFence
{
    private static readonly AsyncLocal<Func<IDisposable>?> Current = new();

    /// <summary>Sets the fence of the run in progress until the returned scope is disposed.</summary>
    public static IDisposable Enter(Func<IDisposable> fence)
    {
        var previous = Current.Value;
        Current.Value = fence;
        return new Scope(previous);
    }

    /// <summary>Checks and holds the run's lease around a commit; throws <see cref="JobLeaseLostException"/> when it was lost.</summary>
    public static IDisposable? Hold() => Current.Value?.Invoke();

    private sealed class Scope(Func<IDisposable>? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }
}
