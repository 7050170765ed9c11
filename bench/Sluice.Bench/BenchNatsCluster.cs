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
    private int[] _monitors = [];

    public BenchNatsCluster(string folder) => _folder = folder;

    /// <summary>The value of <c>SLUICE_CLUSTER_NATS</c>.</summary>
    public string Urls { get; private set; } = "";

    public IReadOnlyList<int> Pids => _nodes.Select(n => n.Id).ToList();

    /// <summary>Stops any nodes of an earlier phase and starts three new ones on empty stores.</summary>
    public async Task StartFreshAsync(CancellationToken ct)
    {
        Stop();
        if (Directory.Exists(_folder)) { Directory.Delete(_folder, true); }
        var binary = Binaries.FirstOrDefault(File.Exists)
            ?? throw new SluiceException("bench cluster: nats-server is not installed (scripts/services.sh installs Debian's package).");
        int[] ports = [IngestBenchmark.FreePort(), IngestBenchmark.FreePort(), IngestBenchmark.FreePort()];
        int[] routes = [IngestBenchmark.FreePort(), IngestBenchmark.FreePort(), IngestBenchmark.FreePort()];
        _monitors = [IngestBenchmark.FreePort(), IngestBenchmark.FreePort(), IngestBenchmark.FreePort()];
        for (var i = 0; i < 3; i++)
        {
            var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[]
            {
                "--server_name", $"bench-n{i}", "--addr", "127.0.0.1", "--port", $"{ports[i]}", "--http_port", $"{_monitors[i]}",
                "--jetstream", "--store_dir", Directory.CreateDirectory(Path.Combine(_folder, $"n{i}")).FullName, "--cluster_name", "sluice-bench",
                "--cluster", $"nats://127.0.0.1:{routes[i]}", "--routes", string.Join(',', routes.Select(r => $"nats://127.0.0.1:{r}")),
            })
            {
                info.ArgumentList.Add(a);
            }

            var node = Process.Start(info) ?? throw new SluiceException($"bench cluster: could not start {binary}");
            node.OutputDataReceived += (_, _) => { };
            node.ErrorDataReceived += (_, _) => { };
            node.BeginOutputReadLine();
            node.BeginErrorReadLine();
            _nodes.Add(node);
        }

        Urls = string.Join(',', ports.Select(p => $"nats://127.0.0.1:{p}"));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        var clock = Stopwatch.StartNew();
        foreach (var monitor in _monitors)
        {
            while (true)
            {
                try
                {
                    using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{monitor}/healthz"), ct).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode) { break; }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
                {
                    // not listening yet
                }

                if (clock.Elapsed > TimeSpan.FromMinutes(1)) { throw new SluiceException($"bench cluster: the NATS node with monitor port {monitor} was not ready within 60 s."); }
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
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
