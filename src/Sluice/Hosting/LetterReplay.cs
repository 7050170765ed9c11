using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;

namespace Sluice.Hosting;

/// <summary>
/// Replays of dead letters asked for from outside a running host (<c>sluice dlq replay</c>). While a <c>run</c> or
/// <c>demo</c> of the recipe holds its run lock, that process alone may write the recipe's state (a stream's landing
/// log), so the letters are handed to it through <see cref="ReplayRequests"/> and its answers awaited; otherwise this
/// process takes the lock and replays them with the recipe's own components, as the running host would.
/// </summary>
public static class LetterReplay
{
    /// <summary>How long a replay handed to a running instance may take before the caller gives up on it.</summary>
    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Each letter's outcome: null replayed, else why it still fails.</summary>
    /// <param name="notice">Told when the letters go to a running instance (the CLI prints it on stderr).</param>
    public static async Task<IReadOnlyList<(long Id, string? Error)>> ReplayAsync(EngineServices services, Recipe definition, List<DeadLetter> letters, Action<string> notice, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(notice);
        using var runLock = ProcessLock.TryAcquire(Path.Combine(services.Data.LocksRoot, $"run-{definition.Name}.lock"));
        return runLock is null
            ? await ForwardAsync(services, definition.Name, letters, notice, ct).ConfigureAwait(false)
            : await ReplayHereAsync(services, definition, letters, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>dlq replay --cluster</c>: no process owns a cluster's log, JetStream does. The letters go through the recipe's
    /// own components built here with the cluster's settings on its shared store, so an HTTP event that passes now is
    /// published to its pipeline's JetStream stream (and counts as replayed only once JetStream acknowledged it), where
    /// the running workers' pipeline takes it like any ingested event; from any machine, no worker's data folder needed.
    /// </summary>
    public static async Task<IReadOnlyList<(long Id, string? Error)>> ReplayInClusterAsync(EngineServices services, Recipe definition, Cluster.ClusterOptions cluster, List<DeadLetter> letters, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(cluster);
        services.Cluster = cluster;
        return await ReplayHereAsync(services, definition, letters, ct).ConfigureAwait(false);
    }

    private static async Task<List<(long Id, string? Error)>> ReplayHereAsync(EngineServices services, Recipe definition, List<DeadLetter> letters, CancellationToken ct)
    {
        var host = new RecipeHost(definition, services);
        await using (host.ConfigureAwait(false))
        {
            // The same path as the console's replays and the requests a running host serves.
            return [.. await host.Operations.ReplayAsync(letters, ct).ConfigureAwait(false)];
        }
    }

    /// <summary>Hands the letters to the running instance and waits for its answers (a bounded wait: it may be a run that is just ending).</summary>
    private static async Task<List<(long Id, string? Error)>> ForwardAsync(EngineServices services, string recipe, List<DeadLetter> letters, Action<string> notice, CancellationToken ct)
    {
        var requests = new ReplayRequests(services.Data, recipe);
        foreach (var letter in letters) { requests.Submit(letter.Id); }
        notice($"'{recipe}' is running on {services.Data.Root}: handing {letters.Count} letter(s) to it ...");
        var results = new List<(long, string?)>();
        var waiting = letters.Select(l => l.Id).ToList();
        var deadline = services.Time.GetUtcNow() + ForwardTimeout;
        while (waiting.Count > 0)
        {
            foreach (var id in waiting.ToList())
            {
                var (done, error) = requests.TakeOutcome(id);
                if (done)
                {
                    results.Add((id, error));
                    waiting.Remove(id);
                }
            }

            if (waiting.Count == 0) { break; }
            if (services.Time.GetUtcNow() > deadline)
            {
                foreach (var id in waiting)
                {
                    var why = requests.Withdraw(id)
                        ? $"the running instance of '{recipe}' did not take the request within {ForwardTimeout.TotalSeconds:0} s (a run --once that is ending?); try again"
                        : $"the running instance of '{recipe}' took the request but gave no answer within {ForwardTimeout.TotalSeconds:0} s; see 'sluice dlq show {id}'";
                    results.Add((id, why));
                }

                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), services.Time, ct).ConfigureAwait(false);
        }

        return results;
    }
}
