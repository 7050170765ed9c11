using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Sluice.Core;
using Sluice.Hosting;

namespace Sluice.IntegrationTests.Management;

/// <summary>What a test needs to look at a running process from outside: its management file, and GETs against its endpoint.</summary>
internal static class ManagementClientSide
{
    public static async Task<ManagementFile> WaitForFileAsync(string dataRoot, string recipe, Support.SluiceProcess run, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (ManagementFile.All(new DataDirectory(dataRoot)).FirstOrDefault(f => f.Recipe == recipe) is { } file) { return file; }
            if (run.HasExited) { throw new InvalidOperationException($"sluice exited before serving.\nstdout:\n{run.Stdout}\nstderr:\n{run.Stderr}"); }
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"no management file within {timeout.TotalSeconds:0} s.\nstderr:\n{run.Stderr}"); }
            await Task.Delay(100);
        }
    }

    public static async Task<(int Status, string Body)> GetAsync(string url, string? key = null)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (key is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key); }
        using var response = await http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Polls <c>/metrics</c> until every line is there (exactly, with its value); the last body in the message otherwise.</summary>
    public static async Task<string> WaitForMetricsAsync(string url, TimeSpan timeout, params string[] lines)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var (_, body) = await GetAsync(url + "/metrics");
            var have = body.Split('\n');
            if (lines.All(l => have.Contains(l))) { return body; }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"/metrics lacks {string.Join(" | ", lines.Where(l => !have.Contains(l)))} after {timeout.TotalSeconds:0} s:\n{body}");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>A pid that no process has now (a process that ran and exited).</summary>
    public static int DeadPid()
    {
        using var p = Process.Start("true")!;
        p.WaitForExit();
        return p.Id;
    }

    public static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
