using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Serving.Auth;
using Sluice.Hosting;

namespace Sluice.Bench;

public sealed record IngestBenchmarkOptions
{
    /// <summary>Seconds per throughput phase.</summary>
    public int Seconds { get; init; } = 10;

    /// <summary>Seconds of overload at twice the sustainable rate.</summary>
    public int OverloadSeconds { get; init; } = 60;

    public int Concurrency { get; init; } = 16;
}

public sealed record IngestBenchmarkReport(
    string Machine, IngestBenchmarkOptions Options,
    LoadResult SluiceBatch, LoadResult ReferenceBatch, LoadResult SluiceSingle, LoadResult ReferenceSingle,
    LoadResult Paced, double VisibilityP50Ms, double VisibilityP99Ms, int Probes, double SteadyPeakRssMiB,
    LoadResult Overload, double OverloadPeakRssMiB, double RecoverySeconds, double SustainableEventsPerSecond)
{
    public string ToMarkdown()
    {
        static string N(double v) => v.ToString("N0", CultureInfo.InvariantCulture);
        static string F(double v) => v.ToString("N1", CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench ingest ({DateTime.UtcNow:yyyy-MM-dd})");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Load: a separate `sluice bench ingest-loadgen` process over loopback, {Options.Concurrency} requests in flight, {Options.Seconds} s per phase after a 15 s warm-up of each server; realistic ecommerce events (~600 bytes), unique event ids.");
        sb.AppendLine();
        sb.AppendLine("| measure | Sluice (`run tenant-analytics`) | reference (Kestrel + same group-commit fsync, nothing else) | ratio | target |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| accepted events/s, batches of 1,000 | {N(SluiceBatch.EventsPerSecond)} (ack p50 {F(SluiceBatch.P50Ms)} ms, p99 {F(SluiceBatch.P99Ms)} ms) | {N(ReferenceBatch.EventsPerSecond)} (p50 {F(ReferenceBatch.P50Ms)} ms, p99 {F(ReferenceBatch.P99Ms)} ms) | {SluiceBatch.EventsPerSecond / ReferenceBatch.EventsPerSecond:N2}x | >= 0.5x; >= 300,000/s (30x the write-up) |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| accepted events/s, single-event requests | {N(SluiceSingle.EventsPerSecond)} (ack p50 {F(SluiceSingle.P50Ms)} ms, p99 {F(SluiceSingle.P99Ms)} ms) | {N(ReferenceSingle.EventsPerSecond)} (p50 {F(ReferenceSingle.P50Ms)} ms, p99 {F(ReferenceSingle.P99Ms)} ms) | {SluiceSingle.EventsPerSecond / ReferenceSingle.EventsPerSecond:N2}x | >= 0.5x |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| visibility in /v1/metrics at {N(Paced.EventsPerSecond)} events/s | p50 {F(VisibilityP50Ms)} ms, p99 {F(VisibilityP99Ms)} ms ({Probes} probes) | | | p99 < 1,000 ms at 10,000/s |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| peak RSS, steady phases | {N(SteadyPeakRssMiB)} MiB | | | |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| sustainable end to end (accepted and in the lake) | {N(SustainableEventsPerSecond)} events/s | | | |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| overload: {Options.OverloadSeconds} s offered at 2x the sustainable rate ({N(Math.Max(20_000, SustainableEventsPerSecond * 2))}/s) | accepted {N(Overload.EventsPerSecond)} events/s, {N(Overload.Throttled)} answers 429/503, {N(Overload.Errors)} errors; peak RSS {N(OverloadPeakRssMiB)} MiB; 202 again {F(RecoverySeconds)} s after the load stopped | | | RSS < 1,024 MiB, recovers |");
        return sb.ToString();
    }
}

/// <summary>
/// <c>sluice bench ingest</c>: runs the real server (<c>sluice run tenant-analytics</c>) and the reference server
/// (<see cref="ReferenceIngestServer"/>) as child processes, one after the other, and drives both with the same load
/// generator process (<c>sluice bench ingest-loadgen</c>) over loopback: batches of 1,000, single events, a paced
/// 10,000 events/s phase with visibility probes through <c>/v1/metrics</c>, and an overload at twice the measured rate.
/// </summary>
public static class IngestBenchmark
{
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(10);

    /// <summary>The measured phases in order (each a fixed duration, so the phases done give the time left).</summary>
    private static readonly string[] Phases =
        ["sluice warm-up", "sluice batches", "sluice single events", "sluice visibility", "sluice overload", "reference warm-up", "reference batches", "reference single events"];

    /// <param name="progress">A progress reporter per phase (title), or null for none.</param>
    public static async Task<IngestBenchmarkReport> RunAsync(
        string root, IngestBenchmarkOptions options, TextWriter log, CancellationToken ct, Func<string, IProgress<JobProgress>>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        var phases = progress?.Invoke("bench ingest");
        var phase = 0;
        void Next() { phases?.Report(new JobProgress(phase, Phases.Length, phase < Phases.Length ? Phases[phase] : "done")); phase++; }
        if (Directory.Exists(root)) { Directory.Delete(root, true); }
        var data = Path.Combine(root, "sluice-data");
        string writer, probeWriter, probeReader;
        using (var services = new EngineServices(new DataDirectory(data), TimeProvider.System, NullLoggerFactory.Instance))
        {
            var tokens = new TokenStore(services.Metadata, services.Time);
            writer = tokens.Create("bench", TokenRole.Writer, "bench").Token;
            probeWriter = tokens.Create("probe", TokenRole.Writer, "bench").Token;
            probeReader = tokens.Create("probe", TokenRole.Reader, "bench").Token;
        }

        var port = LoopbackPort.Next();
        var url = new Uri($"http://127.0.0.1:{port}");
        var duration = TimeSpan.FromSeconds(options.Seconds);
        LoadResult batch, single, paced, overload;
        double p50, p99, steadyRss, overloadRss, recovery, sustainable;
        int probes;
        await log.WriteLineAsync($"starting sluice run tenant-analytics on {url} ...").ConfigureAwait(false);
        using (var sluice = Child.Start(["run", "tenant-analytics", "--data", data, "--port", port.ToString(CultureInfo.InvariantCulture)]))
        {
            await WaitHealthyAsync(url, sluice, ct).ConfigureAwait(false);
            // Both servers get the same warm-up, unmeasured: the first seconds of a .NET process run code the JIT has
            // not optimised yet, and a starved machine delays that further.
            await log.WriteLineAsync("sluice: warm-up ...").ConfigureAwait(false);
            Next();
            await LoadAsync(url, writer, 1000, options.Concurrency, WarmUp, null, ct).ConfigureAwait(false);
            await LoadAsync(url, writer, 1, options.Concurrency, WarmUp / 2, null, ct).ConfigureAwait(false);
            await WaitCaughtUpAsync(url, TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
            await log.WriteLineAsync("sluice: batches of 1,000 ...").ConfigureAwait(false);
            Next();
            batch = await LoadAsync(url, writer, 1000, options.Concurrency, duration, null, ct).ConfigureAwait(false);
            var drain = Stopwatch.StartNew();
            await WaitCaughtUpAsync(url, TimeSpan.FromMinutes(10), ct).ConfigureAwait(false);
            // What the whole pipeline keeps up with: accepted events over the time until the sinks had them all.
            sustainable = batch.Events / (batch.Seconds + drain.Elapsed.TotalSeconds);
            await log.WriteLineAsync($"  {batch.EventsPerSecond:N0} events/s accepted; the sinks had them all {drain.Elapsed.TotalSeconds:N1} s later ({sustainable:N0} events/s end to end)").ConfigureAwait(false);
            await log.WriteLineAsync("sluice: single events ...").ConfigureAwait(false);
            Next();
            single = await LoadAsync(url, writer, 1, options.Concurrency * 4, duration, null, ct).ConfigureAwait(false);
            await log.WriteLineAsync($"  {single.EventsPerSecond:N0} events/s").ConfigureAwait(false);
            await WaitCaughtUpAsync(url, TimeSpan.FromMinutes(5), ct).ConfigureAwait(false);
            await log.WriteLineAsync("sluice: 10,000 events/s with visibility probes ...").ConfigureAwait(false);
            Next();
            var pacedTask = LoadAsync(url, writer, 100, 8, duration, 10_000, ct);
            (p50, p99, probes) = await ProbeVisibilityAsync(url, probeWriter, probeReader, duration, ct).ConfigureAwait(false);
            paced = await pacedTask.ConfigureAwait(false);
            steadyRss = sluice.PeakRssMiB();
            await log.WriteLineAsync($"  visibility p50 {p50:N0} ms, p99 {p99:N0} ms over {probes} probes").ConfigureAwait(false);
            await WaitCaughtUpAsync(url, TimeSpan.FromMinutes(5), ct).ConfigureAwait(false);
            var offered = Math.Max(20_000, sustainable * 2);
            await log.WriteLineAsync($"sluice: overload, {offered:N0} events/s offered for {options.OverloadSeconds} s ...").ConfigureAwait(false);
            Next();
            sluice.ResetPeakRss();
            overload = await LoadAsync(url, writer, 1000, options.Concurrency * 2, TimeSpan.FromSeconds(options.OverloadSeconds), offered, ct).ConfigureAwait(false);
            overloadRss = sluice.PeakRssMiB();
            var clock = Stopwatch.StartNew();
            await WaitAcceptedAsync(url, probeWriter, ct).ConfigureAwait(false);
            recovery = clock.Elapsed.TotalSeconds;
            await log.WriteLineAsync($"  accepted {overload.EventsPerSecond:N0} events/s, {overload.Throttled:N0} throttled, peak RSS {overloadRss:N0} MiB").ConfigureAwait(false);
            await sluice.StopAsync().ConfigureAwait(false);
        }

        await log.WriteLineAsync("reference: Kestrel + group-commit fsync ...").ConfigureAwait(false);
        LoadResult refBatch, refSingle;
        using (var reference = Child.Start(["bench", "ingest-reference", "--folder", Path.Combine(root, "reference"), "--port", port.ToString(CultureInfo.InvariantCulture)]))
        {
            await WaitListeningAsync(url, reference, ct).ConfigureAwait(false);
            Next();
            await LoadAsync(url, writer, 1000, options.Concurrency, WarmUp, null, ct).ConfigureAwait(false);
            await LoadAsync(url, writer, 1, options.Concurrency, WarmUp / 2, null, ct).ConfigureAwait(false);
            Next();
            refBatch = await LoadAsync(url, writer, 1000, options.Concurrency, duration, null, ct).ConfigureAwait(false);
            await log.WriteLineAsync($"  batches: {refBatch.EventsPerSecond:N0} events/s").ConfigureAwait(false);
            Next();
            refSingle = await LoadAsync(url, writer, 1, options.Concurrency * 4, duration, null, ct).ConfigureAwait(false);
            await log.WriteLineAsync($"  single: {refSingle.EventsPerSecond:N0} events/s").ConfigureAwait(false);
            await reference.StopAsync().ConfigureAwait(false);
        }

        Next();
        return new IngestBenchmarkReport(MachineInfo.Describe(), options, batch, refBatch, single, refSingle, paced, p50, p99, probes, steadyRss, overload, overloadRss, recovery, sustainable);
    }

    internal static async Task<LoadResult> LoadAsync(Uri url, string token, int batch, int concurrency, TimeSpan duration, double? rate, CancellationToken ct, bool honourRetryAfter = false)
    {
        var args = new List<string> { "bench", "ingest-loadgen", "--url", url.ToString(), "--token", token, "--tenant", "bench", "--batch", batch.ToString(CultureInfo.InvariantCulture),
            "--concurrency", concurrency.ToString(CultureInfo.InvariantCulture), "--seconds", duration.TotalSeconds.ToString(CultureInfo.InvariantCulture) };
        if (rate is { } r) { args.AddRange(["--rate", r.ToString(CultureInfo.InvariantCulture)]); }
        if (honourRetryAfter) { args.Add("--honour-retry-after"); }
        using var child = Child.Start(args);
        var code = await child.WaitAsync(duration + TimeSpan.FromMinutes(2), ct).ConfigureAwait(false);
        var line = child.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{'));
        if (code != 0 || line is null)
        {
            throw new SluiceException($"bench: the load generator failed ({code}): {child.Stderr}");
        }

        return LoadResult.FromJson(line);
    }

    /// <summary>One marker event at a time: from its 202 until /v1/metrics counts it.</summary>
    private static async Task<(double P50, double P99, int Probes)> ProbeVisibilityAsync(Uri url, string writer, string reader, TimeSpan duration, CancellationToken ct)
    {
        using var client = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(30) };
        var day = DateTime.UtcNow.Date;
        var query = $"/v1/metrics?from={day:yyyy-MM-dd}&to={day.AddDays(2):yyyy-MM-dd}&group_by=day";
        var latencies = new List<double>();
        var end = DateTime.UtcNow + duration;
        var sent = 0L;
        while (DateTime.UtcNow < end)
        {
            sent++;
            var body = $"{{\"event_id\":\"probe-{Guid.NewGuid():N}\",\"schema_version\":1,\"event_type\":\"page_view\",\"event_ts\":\"{DateTime.UtcNow:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}\",\"customer\":{{\"id\":\"p\"}}}}";
            using var post = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/ecommerce/events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", writer);
            using (var response = await client.SendAsync(post, ct).ConfigureAwait(false))
            {
                if (response.StatusCode != HttpStatusCode.Accepted) { throw new SluiceException($"bench: probe got {(int)response.StatusCode}"); }
            }

            var acked = Stopwatch.StartNew();
            while (acked.Elapsed < TimeSpan.FromSeconds(30))
            {
                using var get = new HttpRequestMessage(HttpMethod.Get, query);
                get.Headers.Authorization = new AuthenticationHeaderValue("Bearer", reader);
                using var response = await client.SendAsync(get, ct).ConfigureAwait(false);
                using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
                var seen = json.RootElement.GetProperty("rows").EnumerateArray().Sum(r => r.GetProperty("events").GetInt64());
                if (seen >= sent) { break; }
                await Task.Delay(10, ct).ConfigureAwait(false);
            }

            latencies.Add(acked.Elapsed.TotalMilliseconds);
            await Task.Delay(150, ct).ConfigureAwait(false);
        }

        var sorted = latencies.Order().ToArray();
        return (IngestLoadGenerator.Percentile(sorted, 0.5), IngestLoadGenerator.Percentile(sorted, 0.99), sorted.Length);
    }

    /// <summary>Waits until the sinks have everything (the metrics report no lag), so one phase's backlog does not slow the next.</summary>
    private static async Task WaitCaughtUpAsync(Uri url, TimeSpan timeout, CancellationToken ct)
    {
        using var client = new HttpClient { BaseAddress = url };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            var text = await client.GetStringAsync("/metrics", ct).ConfigureAwait(false);
            var backlog = text.Split('\n').FirstOrDefault(l => l.StartsWith("sluice_landing_backlog_bytes", StringComparison.Ordinal));
            if (backlog is not null && backlog.EndsWith(" 0", StringComparison.Ordinal)) { return; }
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    private static async Task WaitAcceptedAsync(Uri url, string writer, CancellationToken ct)
    {
        using var client = new HttpClient { BaseAddress = url };
        while (true)
        {
            var body = $"{{\"event_id\":\"recover-{Guid.NewGuid():N}\",\"schema_version\":1,\"event_type\":\"page_view\",\"event_ts\":\"{DateTime.UtcNow:yyyy-MM-dd'T'HH:mm:ss'Z'}\",\"customer\":{{\"id\":\"r\"}}}}";
            using var post = new HttpRequestMessage(HttpMethod.Post, "/v1/streams/ecommerce/events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", writer);
            using var response = await client.SendAsync(post, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.Accepted) { return; }
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    internal static async Task WaitHealthyAsync(Uri url, Child child, CancellationToken ct)
    {
        using var client = new HttpClient { BaseAddress = url };
        for (var i = 0; i < 600; i++)
        {
            if (child.HasExited) { throw new SluiceException($"bench: the server exited: {child.Stderr}{child.Stdout}"); }
            try
            {
                using var response = await client.GetAsync("/healthz", ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode) { return; }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }

        throw new SluiceException("bench: the server did not become healthy within 60 s");
    }

    private static async Task WaitListeningAsync(Uri url, Child child, CancellationToken ct)
    {
        for (var i = 0; i < 600; i++)
        {
            if (child.HasExited) { throw new SluiceException($"bench: the reference server exited: {child.Stderr}"); }
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(url.Host, url.Port, ct).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }

        throw new SluiceException("bench: the reference server did not listen within 60 s");
    }
}

/// <summary>This same program as a child process (the apphost, or <c>dotnet sluice.dll</c>).</summary>
internal sealed class Child : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private Child(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_out) { _out.AppendLine(e.Data); } } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_err) { _err.AppendLine(e.Data); } } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout { get { lock (_out) { return _out.ToString(); } } }

    public string Stderr { get { lock (_err) { return _err.ToString(); } } }

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <param name="env">Variables set (or, with a null value, removed) for the child on top of this process's.</param>
    /// <param name="cgroupProcs">A cgroup's <c>cgroup.procs</c>: the child enters it before it runs (through <c>sh</c>,
    /// which writes its own pid there and then execs), so the runtime sees the group's CPU quota from its first instruction.</param>
    public static Child Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null, string? cgroupProcs = null)
    {
        var path = Environment.ProcessPath ?? "dotnet";
        var info = new ProcessStartInfo(cgroupProcs is null ? path : "/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (cgroupProcs is not null)
        {
            foreach (var a in new[] { "-c", "echo $$ > \"$0\" && exec \"$@\"", cgroupProcs, path }) { info.ArgumentList.Add(a); }
        }

        if (Path.GetFileNameWithoutExtension(path) == "dotnet")
        {
            info.ArgumentList.Add(Environment.GetCommandLineArgs()[0]);
        }

        foreach (var a in args) { info.ArgumentList.Add(a); }
        foreach (var (name, value) in env ?? new Dictionary<string, string?>())
        {
            if (value is null) { info.Environment.Remove(name); } else { info.Environment[name] = value; }
        }

        return new Child(Process.Start(info) ?? throw new SluiceException($"bench: could not start {path}"));
    }

    public async Task<int> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw;
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGTERM (an orderly stop), then waits.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) { return; }
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])) { await kill.WaitForExitAsync().ConfigureAwait(false); }
        await WaitAsync(TimeSpan.FromSeconds(90), CancellationToken.None).ConfigureAwait(false);
    }

    public double PeakRssMiB()
    {
        try
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? -1 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    public void ResetPeakRss()
    {
        try
        {
            File.WriteAllText($"/proc/{_process.Id}/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not allowed here: the peak then covers the whole run.
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited) { _process.Kill(entireProcessTree: true); }
        _process.Dispose();
    }
}
