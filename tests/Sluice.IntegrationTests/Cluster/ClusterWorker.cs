using System.Net;
using System.Net.Http.Headers;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>One <c>sluice run --cluster</c> process of a test: its own data folder and port, a writer token, and the stream it posts to.</summary>
internal sealed class ClusterWorker(string data, int port, string token, string recipe, IDictionary<string, string> env, string stream = "ecommerce") : IDisposable
{
    private SluiceProcess? _process;

    public string Data => data;

    public string? LastFailure { get; private set; }

    /// <summary>The process as last started (null before).</summary>
    public SluiceProcess? Process => _process;

    public string Stderr => $"worker on port {port}: " + string.Join('\n', (_process?.Stderr ?? "").Split('\n').TakeLast(15));

    public void Start() => _process = SluiceProcess.Start(data, env, "run", recipe, "--cluster", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public void Kill() => _process?.Kill();

    public async Task WaitHealthyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        // A .NET process starting on a machine loaded by parallel tests (a load of 100 on 2 cores seen) may take a minute and more.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            if (_process!.HasExited) { throw new InvalidOperationException($"worker on port {port} exited: {_process.Stderr}"); }
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/healthz"));
                if (response.IsSuccessStatusCode) { return; }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // starting
            }

            DateTime.UtcNow.ShouldBeLessThan(deadline, $"worker on port {port} is not healthy after 120 s: {_process.Stderr}");
            await Task.Delay(100);
        }
    }

    /// <summary>True when the worker answered 202; a refused connection, a 503 or a timeout is false (send it again).</summary>
    public async Task<bool> TryPostAsync(HttpClient http, byte[] body, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{port}/v1/streams/{stream}/events")) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer ?? token);
        try
        {
            using var response = await http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.Accepted) { return true; }
            LastFailure = $"port {port}: {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
            ((int)response.StatusCode).ShouldBeOneOf([503, 429], LastFailure);
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            LastFailure = $"port {port}: {e.GetType().Name}: {e.Message}";
            return false;
        }
    }

    public void Dispose() => _process?.Dispose();
}
