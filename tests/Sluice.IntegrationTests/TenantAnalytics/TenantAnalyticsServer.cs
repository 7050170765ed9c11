using Sluice.Recipes;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

/// <summary>The tenant-analytics recipe running in-process on a free port over a temporary data folder, with helpers to post and query.</summary>
internal sealed class TenantAnalyticsServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly RecipeHost _host;
    private readonly Task _run;
    private readonly TokenStore _tokens;

    private TenantAnalyticsServer(Engine engine, RecipeHost host, Task run, Uri address, CancellationTokenSource stop)
    {
        _stop = stop;
        Engine = engine;
        _host = host;
        _run = run;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        _tokens = new TokenStore(engine.Services.Metadata, engine.Services.Time);
    }

    public Engine Engine { get; }

    public Uri Address { get; }

    public HttpClient Client { get; }

    public RecipeHost Host => _host;

    public static async Task<TenantAnalyticsServer> StartAsync(Engine engine, string? recipeFolder = null)
    {
        var recipe = new RecipeLoader(RecipeComponents.Create()).Load(recipeFolder ?? TestPaths.Recipe("tenant-analytics"));
        var host = new RecipeHost(recipe, engine.Services) { Http = new Serving.HttpServerOptions("127.0.0.1", 0) };
        var stop = new CancellationTokenSource();
        var run = host.RunAsync(stop.Token);
        var address = await host.HttpStarted.WaitAsync(TimeSpan.FromSeconds(30));
        return new TenantAnalyticsServer(engine, host, run, address, stop);
    }

    public string Token(string tenant, TokenRole role, params string[] streams) =>
        _tokens.Create(tenant, role, null, streams.Length == 0 ? null : streams).Token;

    public Task<HttpResponseMessage> PostAsync(string? token, string body, string contentType = "application/json", string stream = "ecommerce") =>
        PostAsync(token, Encoding.UTF8.GetBytes(body), contentType, stream);

    public async Task<HttpResponseMessage> PostAsync(string? token, byte[] body, string contentType = "application/json", string stream = "ecommerce")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/streams/{stream}/events") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (token is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token); }
        return await Client.SendAsync(request);
    }

    public async Task<(int Status, JsonElement Body)> GetJsonAsync(string? token, string pathAndQuery)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, pathAndQuery);
        if (token is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token); }
        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return ((int)response.StatusCode, body);
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();

    /// <summary>Polls a count query until it reaches the expected value (the pipeline commits asynchronously).</summary>
    public async Task<long> WaitForCountAsync(string sql, long expected, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        long last = -1;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = Engine.Count(sql);
            }
            catch (Core.SluiceException)
            {
                last = -1;
            }

            if (last == expected) { return last; }
            await Task.Delay(50);
        }

        return last;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _stop.CancelAsync();
        try
        {
            await _run;
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }

        await _host.DisposeAsync();
        _stop.Dispose();
    }
}

/// <summary>A copy of a shipped recipe in a temporary folder with some lines of its recipe.yaml changed.</summary>
internal static class RecipeVariant
{
    public static string Create(TempFolder folder, string recipe, params (string From, string To)[] replacements)
    {
        var target = folder.Sub("recipe-" + recipe);
        CopyFolder(TestPaths.Recipe(recipe), target);
        var path = Path.Combine(target, "recipe.yaml");
        var text = File.ReadAllText(path);
        foreach (var (from, to) in replacements)
        {
            if (!text.Contains(from, StringComparison.Ordinal)) { throw new InvalidOperationException($"'{from}' is not in {recipe}/recipe.yaml"); }
            text = text.Replace(from, to, StringComparison.Ordinal);
        }

        File.WriteAllText(path, text);
        return target;
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from)) { File.Copy(file, Path.Combine(to, Path.GetFileName(file))); }
        foreach (var dir in Directory.EnumerateDirectories(from)) { CopyFolder(dir, Path.Combine(to, Path.GetFileName(dir))); }
    }
}
