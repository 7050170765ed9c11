using System.Net;
using System.Net.Http.Headers;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>One <c>sluice run --cluster</c> process of a test: its own data folder and port, a writer token, and the stream it posts to.</summary>
internal sealed class ClusterWorker(string data, int port, string token, string recipe, IDictionary<string, string> env, string stream = "ecommerce") : IDisposable
{
    private SluiceProcess? _process;
    private int _port = port;

    public string Data => data;

    /// <summary>The port it listens on (another than the one it was made with when that was taken meanwhile).</summary>
    public int Port => _port;

    public string? LastFailure { get; private set; }

    /// <summary>The process as last started (null before).</summary>
    public SluiceProcess? Process => _process;

    public string Stderr => $"worker on port {_port}: " + string.Join('\n', (_process?.Stderr ?? "").Split('\n').TakeLast(15));

    /// <summary><paramref name="count"/> workers of <paramref name="recipe"/>, each on a data folder <c>worker{i}</c> of <paramref name="temp"/> and a port of its own, started.</summary>
    public static List<ClusterWorker> StartAll(TempFolder temp, int count, string recipe, IDictionary<string, string> env, string token = "unused", string stream = "ecommerce")
    {
        ArgumentNullException.ThrowIfNull(temp);
        var workers = new List<ClusterWorker>();
        for (var i = 0; i < count; i++)
        {
            workers.Add(new ClusterWorker(Directory.CreateDirectory(temp.Sub($"worker{i}")).FullName, FreePort.Next(), token, recipe, env, stream));
            workers[^1].Start();
        }

        return workers;
    }

    public void Start() => _process = SluiceProcess.Start(data, env, "run", recipe, "--cluster", "--port", _port.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public void Kill() => _process?.Kill();

    /// <summary>
    /// Until the worker answers its <c>/healthz</c> (180 s at most: at load 110 a worker took 100 s to start). A worker
    /// that could not listen on its port (a process elsewhere took it after it was picked) is started again on another.
    /// </summary>
    public async Task WaitHealthyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        // A .NET process starting on a machine loaded by parallel tests (a load of 100 on 2 cores seen) may take a minute and more.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        for (var rebinds = 0; ; )
        {
            if (_process!.HasExited)
            {
                if (_process.Stderr.Contains($":{_port}: ", StringComparison.Ordinal) && _process.Stderr.Contains("cannot listen on ", StringComparison.Ordinal) && ++rebinds <= 5)
                {
                    _process.Dispose();
                    _port = FreePort.Next();
                    Start();
                    continue;
                }

                throw new InvalidOperationException($"worker on port {_port} exited: {_process.Stderr}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{_port}/healthz"));
                if (response.IsSuccessStatusCode) { return; }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // starting
            }

            DateTime.UtcNow.ShouldBeLessThan(deadline, $"worker on port {_port} is not healthy after 180 s: {_process.Stderr}");
            await Task.Delay(100);
        }
    }

    /// <summary>True when the worker answered 202; a refused connection, a 503 or a timeout is false (send it again). <paramref name="toStream"/>: another stream than the worker's.</summary>
    public async Task<bool> TryPostAsync(HttpClient http, byte[] body, string? bearer = null, string? toStream = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{_port}/v1/streams/{toStream ?? stream}/events")) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer ?? token);
        try
        {
            using var response = await http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.Accepted) { return true; }
            LastFailure = $"port {_port}: {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
            ((int)response.StatusCode).ShouldBeOneOf([503, 429], LastFailure);
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            LastFailure = $"port {_port}: {e.GetType().Name}: {e.Message}";
            return false;
        }
    }

    public void Dispose() => _process?.Dispose();
}
