using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Sluice.IntegrationTests.Reliability;

/// <summary>
/// Sends hostile requests to a push endpoint from a few workers until the case count or the time budget is reached:
/// random bytes, random JSON, and batches (JSON arrays or NDJSON) of known-good events interleaved with mutated ones.
/// Every answer must be below 500; in a 202 no good event may be among the rejected. What it saw is returned so the
/// test can check that every good event accepted lands. The seed is in every failure message.
/// </summary>
internal sealed class IngestFuzzRun(HttpClient client, string token, int seed)
{
    public const int Workers = 3;

    /// <summary>A stream to send to and how to make its good events (ids must start with the prefix given).</summary>
    public sealed record Target(string Stream, Func<EventFuzzer, string, List<FuzzMember>> Good);

    public List<string> AcceptedGood { get; } = [];

    public int Cases { get; private set; }

    public int Requests { get; private set; }

    public int Rejected { get; private set; }

    public Dictionary<int, int> Statuses { get; } = [];

    public TimeSpan Elapsed { get; private set; }

    public async Task RunAsync(IReadOnlyList<Target> targets, int maxCases, TimeSpan budget)
    {
        var clock = Stopwatch.StartNew();
        var gate = new Lock();
        var failures = new List<string>();
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var fuzz = new EventFuzzer(seed + w);
            for (var n = 0; ; n++)
            {
                lock (gate) { if (Cases >= maxCases || clock.Elapsed > budget || failures.Count > 0) { return; } }
                var target = fuzz.Pick(targets);
                var (body, contentType, goods, cases, what) = Request(fuzz, target, $"{w}-{n}");
                using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/streams/{target.Stream}/events") { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await client.SendAsync(request);
                var text = await response.Content.ReadAsStringAsync();
                var status = (int)response.StatusCode;
                var problem = Check(status, text, goods, out var rejected);
                lock (gate)
                {
                    Cases += cases;
                    Requests++;
                    Statuses[status] = Statuses.GetValueOrDefault(status) + 1;
                    Rejected += rejected;
                    if (problem is not null)
                    {
                        failures.Add($"seed {seed} (worker {w}, request {n}, {target.Stream}, {contentType}, {what}): {problem}; answer {status} {Clip(text)}; body {Clip(Encoding.UTF8.GetString(body))}");
                    }
                    else if (status == 202)
                    {
                        AcceptedGood.AddRange(goods.Select(g => g.Id));
                    }
                }
            }
        }))).ConfigureAwait(false);
        Elapsed = clock.Elapsed;
        failures.ShouldBeEmpty();
    }

    private static string? Check(int status, string text, List<(int Index, string Id)> goods, out int rejected)
    {
        rejected = 0;
        if (status >= 500) { return "a server error"; }
        if (status != 202) { return null; }
        var body = JsonDocument.Parse(text).RootElement;
        var indexes = body.GetProperty("rejected").EnumerateArray().Select(r => r.GetProperty("index").GetInt32()).ToHashSet();
        rejected = indexes.Count;
        var lost = goods.Where(g => indexes.Contains(g.Index)).Select(g => g.Id).ToList();
        return lost.Count > 0 ? $"good events rejected: {string.Join(", ", lost)}" : null;
    }

    private static (byte[] Body, string ContentType, List<(int Index, string Id)> Goods, int Cases, string What) Request(EventFuzzer fuzz, Target target, string tag)
    {
        var ndjson = fuzz.Random.Next(2) == 0;
        var contentType = ndjson ? "application/x-ndjson" : "application/json";
        var goods = new List<(int, string)>();
        switch (fuzz.Random.Next(10))
        {
            case 0:
                return (fuzz.RandomBytes(EventFuzzer.Render(target.Good(fuzz, $"noise-{tag}"))), contentType, goods, 1, "random bytes");
            case 1:
                return (Encoding.UTF8.GetBytes(fuzz.RandomJson(4)), contentType, goods, 1, "random JSON");
        }

        var events = new List<string>();
        var what = new List<string>();
        var count = fuzz.Random.Next(1, 7);
        var cases = 0;
        for (var i = 0; i < count; i++)
        {
            var roll = fuzz.Random.Next(10);
            if (roll < 4)
            {
                var id = $"good-{tag}-{i}";
                events.Add(EventFuzzer.Render(target.Good(fuzz, id)));
                goods.Add((i, id));
            }
            else if (roll < 9)
            {
                var members = target.Good(fuzz, $"m-{tag}-{i}");
                what.Add(fuzz.Mutate(members));
                if (fuzz.Random.Next(4) == 0) { what.Add(fuzz.Mutate(members)); }
                events.Add(EventFuzzer.Render(members));
                cases++;
            }
            else
            {
                events.Add(fuzz.RandomJson(3));
                what.Add("random JSON event");
                cases++;
            }
        }

        var text = ndjson ? string.Join("\n", events) : "[" + string.Join(",", events) + "]";
        return (Encoding.UTF8.GetBytes(text), contentType, goods, Math.Max(1, cases), string.Join("; ", what));
    }

    private static string Clip(string text) => text.Length <= 600 ? text : text[..600] + "...";
}
