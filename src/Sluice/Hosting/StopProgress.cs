using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Sluice.Hosting;

/// <summary>
/// What a host's stop still waits for, so a slow stop is never a silent one: the stop's start is said at once, then
/// every <see cref="ReportInterval"/> the parts not yet done are named, until the host is disposed (its stop is bounded,
/// so the lines are too). A second Ctrl-C reads <see cref="StillStopping"/> to say what it abandons.
/// </summary>
internal sealed class StopProgress : IAsyncDisposable
{
    /// <summary>A stop that ends within this says nothing more than its start: a few seconds is a normal drain.</summary>
    internal static readonly TimeSpan ReportInterval = TimeSpan.FromSeconds(5);

    /// <summary>Every host of this process that is stopping (a demo runs several), for the second Ctrl-C's line.</summary>
    private static readonly ConcurrentDictionary<StopProgress, bool> Stopping = new();

    private readonly string _recipe;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, Func<bool>> _parts = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _done = new();
    private DateTimeOffset _since;
    private Task _reporting = Task.CompletedTask;

    public StopProgress(string recipe, ILogger log, TimeProvider time)
    {
        _recipe = recipe;
        _log = log;
        _time = time;
    }

    /// <summary>UTC ticks by which every host that began a stop should have closed (0: none began); never lowered.</summary>
    private static long s_closedByTicks;

    /// <summary>When the last stop of this process should have ended, closing included; null before any stop began.</summary>
    public static DateTimeOffset? ClosedBy => Interlocked.Read(ref s_closedByTicks) is var ticks and > 0 ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    /// <summary>The parts of every stopping host of this process not yet done, each prefixed with its recipe.</summary>
    public static IReadOnlyList<string> StillStopping() =>
        Stopping.Keys.SelectMany(p => p.Pending.Select(part => $"{p._recipe}: {part}")).Order(StringComparer.Ordinal).ToList();

    /// <summary>A part that is done when <paramref name="task"/> has ended.</summary>
    public void Add(string name, Task task) => _parts[name] = () => task.IsCompleted;

    /// <summary>A part that is done when the returned handle is disposed (a step of the stop run in line: the HTTP server, a disposal).</summary>
    public IDisposable Step(string name)
    {
        var step = new StepHandle();
        _parts[name] = () => step.Done;
        return step;
    }

    /// <summary>The parts not yet done, by name.</summary>
    public IReadOnlyList<string> Pending => _parts.Where(p => !p.Value()).Select(p => p.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Says the stop has begun and why, and starts naming what is left every <see cref="ReportInterval"/>; idempotent.
    /// <paramref name="closing"/>: what the host may take after <paramref name="bound"/> to close.
    /// </summary>
    public void Begin(string reason, TimeSpan bound, TimeSpan closing)
    {
        if (!Stopping.TryAdd(this, true)) { return; }
        _since = _time.GetUtcNow();
        var by = (_since + bound + closing).UtcTicks;
        for (var seen = Interlocked.Read(ref s_closedByTicks); seen < by; seen = Interlocked.Read(ref s_closedByTicks))
        {
            if (Interlocked.CompareExchange(ref s_closedByTicks, by, seen) == seen) { break; }
        }

        HostLog.Stopping(_log, _recipe, reason, bound.TotalSeconds, string.Join(", ", Pending));
        _reporting = ReportAsync(_done.Token);
    }

    private async Task ReportAsync(CancellationToken ct)
    {
        try
        {
            using var timer = new PeriodicTimer(ReportInterval, _time);
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                var pending = Pending;
                HostLog.StillStopping(_log, _recipe, (_time.GetUtcNow() - _since).TotalSeconds, pending.Count == 0 ? "closing" : string.Join(", ", pending));
            }
        }
        catch (OperationCanceledException)
        {
            // The stop ended.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Stopping.TryRemove(this, out _);
        await _done.CancelAsync().ConfigureAwait(false);
        await _reporting.ConfigureAwait(false);
        _done.Dispose();
    }

    private sealed class StepHandle : IDisposable
    {
        public bool Done { get; private set; }

        public void Dispose() => Done = true;
    }
}
