using System.Net.Http.Headers;
using System.Text.Json;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.Core.Status;

namespace Sluice.Cli;

/// <summary>
/// Talks to the running <c>sluice run</c> or <c>sluice demo</c> processes of a data folder, found through their
/// management files (<see cref="ManagementFile"/>): one per process, even when it runs several recipes.
/// </summary>
internal sealed class ManagementClient : IDisposable
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly HttpClient _http = new() { Timeout = Timeout.InfiniteTimeSpan };

    private ManagementClient(IReadOnlyList<ManagementFile> processes) => Processes = processes;

    /// <summary>One file per live process (the first of its recipes' files).</summary>
    public IReadOnlyList<ManagementFile> Processes { get; }

    /// <summary>The live processes of the data folder; a "not running" error when there is none (files of dead processes are ignored).</summary>
    public static ManagementClient Connect(DataDirectory data)
    {
        var files = ManagementFile.All(data);
        var live = files.Where(f => f.IsAlive).GroupBy(f => f.Pid).Select(g => g.First()).ToList();
        if (live.Count == 0)
        {
            var stale = files.Count == 0 ? "" : $" ({files.Count} management file(s) under {ManagementFile.Folder(data)} name processes that are gone: pid {string.Join(", ", files.Select(f => f.Pid).Distinct())})";
            throw new SluiceException($"not running: no 'sluice run' or 'sluice demo' serves the data folder {data.Root}{stale}");
        }

        return new ManagementClient(live);
    }

    public async Task<StatusSnapshot> StatusAsync(ManagementFile process, CancellationToken ct)
    {
        using var response = await SendAsync(process, "/api/status?history=true", HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
        return await JsonSerializer.DeserializeAsync<StatusSnapshot>(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), Json, ct).ConfigureAwait(false)
            ?? throw new SluiceException($"{process.Url}/api/status answered nothing");
    }

    /// <summary>The process whose figures name the pipeline; null when none runs it.</summary>
    public async Task<ManagementFile?> RunningAsync(string pipeline, CancellationToken ct)
    {
        foreach (var p in Processes)
        {
            var status = await StatusAsync(p, ct).ConfigureAwait(false);
            if (status.Pipelines.Any(x => $"{x.Recipe}/{x.Pipeline}" == pipeline)) { return p; }
        }

        return null;
    }

    /// <summary>The tap's lines as they come, until its limit, the server's end or <paramref name="ct"/>.</summary>
    public async IAsyncEnumerable<string> TapAsync(ManagementFile process, string pipeline, string? sink, int limit, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var query = $"/api/tap?pipeline={Uri.EscapeDataString(pipeline)}&limit={limit}" + (sink is null ? "" : $"&sink={Uri.EscapeDataString(sink)}");
        using var response = await SendAsync(process, query, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            yield return line;
        }
    }

    private async Task<HttpResponseMessage> SendAsync(ManagementFile process, string path, HttpCompletionOption completion, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, process.Url + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", process.Key);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new SluiceException($"not running: pid {process.Pid} (recipe {process.Recipe}) does not answer at {process.Url}: {e.Message}", e);
        }

        if (response.IsSuccessStatusCode) { return response; }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            var error = body;
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("error", out var e)) { error = e.GetString() ?? body; }
            }
            catch (JsonException)
            {
                // Not JSON: the body as it is.
            }

            throw new SluiceException($"{process.Url}{path.Split('?')[0]}: {(int)response.StatusCode} {error}");
        }
    }

    public void Dispose() => _http.Dispose();
}
