using System.Diagnostics;
using Sluice.Core;

namespace Sluice.Bench;

/// <summary>
/// The benchmark's own three-node NATS JetStream cluster (Debian's <c>nats-server</c>) on free loopback ports, so its
/// CPU is this run's alone (the services' nodes serve other programs too) and each phase starts from empty stores.
/// </summary>
internal sealed class BenchNatsCluster : IDisposable
{
    private static readonly string[] Binaries = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];
    private readonly string _folder;
    private readonly List<Process> _nodes = [];

    public BenchNatsCluster(string folder) => _folder = folder;

    /// <summary>The value of <c>SLUICE_CLUSTER_NATS</c>.</summary>
    public string Urls { get; private set; } = "";

    public IReadOnlyList<int> Pids => _nodes.Select(n => n.Id).ToList();

    /// <summary>
    /// Stops any nodes of an earlier phase and starts three new ones on empty stores. A node that exits before it is ready
    /// (another process took one of its ports between the pick and its bind) fails the attempt: the three start again
    /// on other ports, three attempts at most, and the last failure names the node's own last words.
    /// </summary>
    public async Task StartFreshAsync(CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            var failure = await TryStartAsync(ct).ConfigureAwait(false);
            if (failure is null) { return; }
            if (attempt == 3) { throw new SluiceException($"bench cluster: {failure} (attempt {attempt} of 3)."); }
        }
    }

    /// <summary>One attempt: null once all three answer <c>/healthz</c>, else why not.</summary>
    private async Task<string?> TryStartAsync(CancellationToken ct)
    {
        Stop();
        if (Directory.Exists(_folder)) { Directory.Delete(_folder, true); }
        var binary = Binaries.FirstOrDefault(File.Exists)
            ?? throw new SluiceException("bench cluster: nats-server is not installed (scripts/services.sh installs Debian's package).");
        int[] ports = [LoopbackPort.Next(), LoopbackPort.Next(), LoopbackPort.Next()];
        int[] routes = [LoopbackPort.Next(), LoopbackPort.Next(), LoopbackPort.Next()];
        var monitors = new[] { LoopbackPort.Next(), LoopbackPort.Next(), LoopbackPort.Next() };
        var said = new Queue<string>[3];
        for (var i = 0; i < 3; i++)
        {
            var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[]
            {
                "--server_name", $"bench-n{i}", "--addr", "127.0.0.1", "--port", $"{ports[i]}", "--http_port", $"{monitors[i]}",
                "--jetstream", "--store_dir", Directory.CreateDirectory(Path.Combine(_folder, $"n{i}")).FullName, "--cluster_name", "sluice-bench",
                "--cluster", $"nats://127.0.0.1:{routes[i]}", "--routes", string.Join(',', routes.Select(r => $"nats://127.0.0.1:{r}")),
            })
            {
                info.ArgumentList.Add(a);
            }

            var node = Process.Start(info) ?? throw new SluiceException($"bench cluster: could not start {binary}");
            var lines = said[i] = new Queue<string>();
            DataReceivedEventHandler keep = (_, e) =>
            {
                if (e.Data is null) { return; }
                lock (lines)
                {
                    lines.Enqueue(e.Data);
                    if (lines.Count > 5) { lines.Dequeue(); } // bounded: a node's last words are what explain its exit
                }
            };
            node.OutputDataReceived += keep;
            node.ErrorDataReceived += keep;
            node.BeginOutputReadLine();
            node.BeginErrorReadLine();
            _nodes.Add(node);
        }

        Urls = string.Join(',', ports.Select(p => $"nats://127.0.0.1:{p}"));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 3; i++)
        {
            while (true)
            {
                try
                {
                    using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{monitors[i]}/healthz"), ct).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode) { break; }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
                {
                    // not listening yet
                }

                if (_nodes[i].HasExited || clock.Elapsed > TimeSpan.FromMinutes(1))
                {
                    string last;
                    lock (said[i]) { last = string.Join(" | ", said[i]); }
                    return $"the NATS node on port {ports[i]} (monitor {monitors[i]}) {(_nodes[i].HasExited ? $"exited with {_nodes[i].ExitCode}" : "was not ready within 60 s")}; it said: {last}";
                }

                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }

        return null;
    }

    private void Stop()
    {
        foreach (var node in _nodes)
        {
            if (!node.HasExited)
            {
                node.Kill();
                // Bounded, so it does not wait for the output readers' end of file: those reads complete on the socket
                // thread (pipes are sockets to .NET on Linux), and this may run on it (docs/ARCHITECTURE.md, "Socket
                // completions run inline"): WaitForExit() without a bound hung bench cluster there.
                node.WaitForExit(TimeSpan.FromSeconds(30));
            }

            node.Dispose();
        }

        _nodes.Clear();
    }

    public void Dispose() => Stop();
}
