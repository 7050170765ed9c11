using System.Collections.Concurrent;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>One request of <see cref="ClusterPacedPosts"/>: its body, the ids of the events it carries, and the stream it goes to (null: the worker's).</summary>
internal sealed record PacedRequest(byte[] Body, IReadOnlyList<string> Ids, string? Stream = null);

/// <summary>
/// A client posting events to a cluster's workers at a pace their batches can follow, so that a worker doomed at a
/// crash point reaches it before the client is done: two lanes, each waiting 50 ms after a request is accepted. A
/// request refused (a worker dying or still starting: a refused connection, 503, 429, a timeout) goes 100 ms later to
/// the next of the workers live at that moment, until one accepts it or its patience is over.
/// </summary>
internal static class ClusterPacedPosts
{
    /// <summary>Posts every request; returns the ids of the events accepted (202), each request's once.</summary>
    /// <param name="live">The workers that take requests now (asked again before each attempt: it changes as workers die and start).</param>
    public static async Task<List<string>> SendAsync(IReadOnlyList<PacedRequest> requests, Func<IReadOnlyList<ClusterWorker>> live, TimeSpan patience)
    {
        var acked = new ConcurrentBag<string>();
        var next = -1;
        async Task LaneAsync(int lane)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
            int r;
            while ((r = Interlocked.Increment(ref next)) < requests.Count)
            {
                var deadline = DateTime.UtcNow + patience;
                for (var attempt = 0; ; attempt++)
                {
                    var workers = live();
                    var w = workers[(lane + r + attempt) % workers.Count];
                    if (await w.TryPostAsync(http, requests[r].Body, toStream: requests[r].Stream))
                    {
                        foreach (var id in requests[r].Ids) { acked.Add(id); }
                        break;
                    }

                    DateTime.UtcNow.ShouldBeLessThan(deadline, $"request {r} not accepted within {patience.TotalSeconds:0} s: {w.LastFailure}");
                    await Task.Delay(100);
                }

                await Task.Delay(50);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 2).Select(lane => Task.Run(() => LaneAsync(lane))));
        return [.. acked];
    }
}
