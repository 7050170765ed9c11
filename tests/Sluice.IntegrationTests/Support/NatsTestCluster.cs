using System.Diagnostics;
using System.Net.Sockets;

namespace Sluice.IntegrationTests.Support;

/// <summary>
/// A test's own three-node NATS JetStream cluster (Debian's <c>nats-server</c>, which <c>scripts/services.sh</c>
/// installs) on free loopback ports, store folders under <paramref name="folder"/>: a node can be SIGKILLed and
/// started again on the same ports and store without touching the shared one of <c>scripts/services.sh</c>.
/// </summary>
internal sealed class NatsTestCluster : IAsyncDisposable
{
    private readonly string _folder;
    private readonly int[] _ports;
    private readonly int[] _routes;
    private readonly int[] _monitors;
    private readonly Process?[] _nodes = new Process?[3];

    private NatsTestCluster(string folder)
    {
        _folder = folder;
        _ports = [FreePort.Next(), FreePort.Next(), FreePort.Next()];
        _routes = [FreePort.Next(), FreePort.Next(), FreePort.Next()];
        _monitors = [FreePort.Next(), FreePort.Next(), FreePort.Next()];
    }

    /// <summary>The value of <c>SLUICE_CLUSTER_NATS</c> for the workers.</summary>
    public string Urls => string.Join(',', _ports.Select(p => $"nats://127.0.0.1:{p}"));

    public static async Task<NatsTestCluster> StartAsync(string folder)
    {
        var cluster = new NatsTestCluster(folder);
        for (var i = 0; i < 3; i++) { cluster.Start(i); }
        for (var i = 0; i < 3; i++) { await cluster.WaitReadyAsync(i); }
        return cluster;
    }

    public void Start(int node)
    {
        var binary = new[] { "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("nats-server is not installed: " + ServerSettings.Hint);
        var store = Path.Combine(_folder, $"n{node}");
        Directory.CreateDirectory(store);
        // A stream reserves its max_bytes on every replica against max_file_store (75% of the free disk by default); the
        // test's streams use a few MB, so the node allows 1 TiB of reservations (scripts/services.sh does the same).
        var config = Path.Combine(_folder, $"n{node}.conf");
        File.WriteAllText(config, "jetstream {\n  max_file_store: 1099511627776\n  max_memory_store: 1073741824\n}\n");
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
        {
            "-c", config, "--server_name", $"test-n{node}", "--addr", "127.0.0.1", "--port", $"{_ports[node]}", "--http_port", $"{_monitors[node]}",
            "--jetstream", "--store_dir", store, "--cluster_name", "sluice-test", "--cluster", $"nats://127.0.0.1:{_routes[node]}",
            // The node's log, kept across its restarts (appended): what it says of an asset it could not recover goes into a failing wait's message.
            "--log", LogOf(node),
            "--routes", string.Join(',', _routes.Select(r => $"nats://127.0.0.1:{r}")),
        })
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _nodes[node] = process;
    }

    /// <summary>SIGKILL: the node keeps nothing it had not written.</summary>
    public void Kill(int node)
    {
        if (_nodes[node] is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit();
        }
    }

    /// <summary>
    /// Until the node's JetStream is current with the cluster (its <c>/healthz</c> answers ok): a node started again
    /// catches up on every stream and consumer first, which on a loaded machine takes longer than a fresh start.
    /// </summary>
    public async Task WaitReadyAsync(int node)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        var last = "";
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{_monitors[node]}/healthz"));
                if (response.IsSuccessStatusCode) { return; }
                last = await response.Content.ReadAsStringAsync();
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SocketException)
            {
                // not listening yet
                last = e.Message;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"NATS node {node} (port {_ports[node]}) is not ready after 180 s; its /healthz: {last}\n{await AssetAsync(last)}\nits log's warnings and errors:\n{Warnings(node)}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The consumer a /healthz answer names (<c>... &gt; stream &gt; consumer' is not current</c>) as each node's <c>/jsz</c> shows it: there or not, its replicas' currency and lag.</summary>
    private async Task<string> AssetAsync(string healthz)
    {
        var named = System.Text.RegularExpressions.Regex.Match(healthz, @"consumer '[^']*(?:>|\\u003e) ([^ ']+) (?:>|\\u003e) ([^ ']+)'");
        if (!named.Success) { return ""; }
        var (stream, consumer) = (named.Groups[1].Value, named.Groups[2].Value);
        var lines = new List<string>();
        for (var n = 0; n < 3; n++)
        {
            var json = await JetStreamStateAsync(n);
            if (!json.StartsWith('{')) { lines.Add($"node {n}: {json}"); continue; }
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            var found = doc.RootElement.TryGetProperty("account_details", out var accounts)
                ? accounts.EnumerateArray().SelectMany(a => a.TryGetProperty("stream_detail", out var s) ? s.EnumerateArray() : Enumerable.Empty<System.Text.Json.JsonElement>())
                    .Where(s => s.GetProperty("name").GetString() == stream)
                    .Select(s => s.TryGetProperty("consumer_detail", out var c) ? string.Join(", ", c.EnumerateArray().Select(x => x.GetProperty("name").GetString() == consumer ? x.GetRawText() : x.GetProperty("name").GetString())) : "no consumers")
                    .FirstOrDefault() ?? "no such stream"
                : "no account details";
            lines.Add($"node {n}'s consumers of {stream}: {found}");
        }

        return string.Join('\n', lines);
    }

    private string LogOf(int node) => Path.Combine(_folder, $"n{node}.log");

    /// <summary>The last 40 warnings and errors in a node's log (since its first start).</summary>
    public string Warnings(int node)
    {
        try
        {
            using var reader = new StreamReader(new FileStream(LogOf(node), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            var lines = new Queue<string>();
            while (reader.ReadLine() is { } line)
            {
                if (!line.Contains("[WRN]", StringComparison.Ordinal) && !line.Contains("[ERR]", StringComparison.Ordinal)) { continue; }
                lines.Enqueue(line);
                if (lines.Count > 40) { lines.Dequeue(); }
            }

            return string.Join('\n', lines);
        }
        catch (IOException e)
        {
            return e.Message;
        }
    }

    /// <summary>What a node's monitoring says of JetStream's streams and consumers (<c>/jsz</c>), for a failing test's message.</summary>
    public async Task<string> JetStreamStateAsync(int node)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            return await http.GetStringAsync(new Uri($"http://127.0.0.1:{_monitors[node]}/jsz?consumers=true"));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return $"node {node}: {e.Message}";
        }
    }

    /// <summary>
    /// Each consumer as the first node that answers sees it: events waiting, delivered and unacknowledged, pull
    /// requests waiting, last delivered and acknowledged stream sequence, redeliveries, leader. For a stalled test's message.
    /// </summary>
    public async Task<string> ConsumersAsync()
    {
        for (var node = 0; node < 3; node++)
        {
            var json = await JetStreamStateAsync(node);
            if (!json.StartsWith('{')) { continue; }
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            var lines = new List<string>();
            if (!doc.RootElement.TryGetProperty("account_details", out var accounts)) { return $"node {node}: no account details"; }
            foreach (var account in accounts.EnumerateArray())
            {
                if (!account.TryGetProperty("stream_detail", out var streams)) { continue; }
                foreach (var stream in streams.EnumerateArray())
                {
                    var state = stream.GetProperty("state");
                    lines.Add($"stream {stream.GetProperty("name")}: {state.GetProperty("messages")} messages, leader {Leader(stream)}");
                    if (!stream.TryGetProperty("consumer_detail", out var consumers)) { continue; }
                    foreach (var c in consumers.EnumerateArray())
                    {
                        lines.Add($"  {c.GetProperty("name")}: pending {c.GetProperty("num_pending")}, ack pending {c.GetProperty("num_ack_pending")}, waiting {c.GetProperty("num_waiting")}, "
                            + $"redelivered {c.GetProperty("num_redelivered")}, delivered {c.GetProperty("delivered").GetProperty("stream_seq")}, ack floor {c.GetProperty("ack_floor").GetProperty("stream_seq")}, leader {Leader(c)}");
                    }
                }
            }

            return $"consumers as node {node} sees them:\n" + string.Join('\n', lines);
        }

        return "no NATS node answered /jsz";

        static string Leader(System.Text.Json.JsonElement e) =>
            e.TryGetProperty("cluster", out var c) && c.TryGetProperty("leader", out var l) ? l.GetString() ?? "-" : "-";
    }

    public ValueTask DisposeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            Kill(i);
            _nodes[i]?.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
