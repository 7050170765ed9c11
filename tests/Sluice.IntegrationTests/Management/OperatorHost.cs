using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sluice.Connectors.Files;
using Sluice.Core.Config;
using Sluice.Hosting;
using Sluice.IntegrationTests.Support;
using Sluice.Serving;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Management;

/// <summary>
/// vehicle-files running in this process with its management endpoint on a free port (as <c>sluice run</c> serves it),
/// plus a file type that quarantines bad records (<c>fleet_*.json</c> into <c>raw_data.fleet_events</c>), and an admin,
/// a reader and a writer token. Requests go over real HTTP.
/// </summary>
internal sealed class OperatorHost : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly CancellationTokenSource _stop;
    private readonly HttpClient _http;
    private readonly RecipeHost _host;
    private readonly Task _run;

    private OperatorHost(Engine engine, RecipeHost host, CancellationTokenSource stop, Task run, Uri address, string admin, string reader, string writer)
    {
        Engine = engine;
        _stop = stop;
        _host = host;
        _run = run;
        _http = new HttpClient { BaseAddress = address };
        Admin = admin;
        Reader = reader;
        Writer = writer;
    }

    public Engine Engine { get; }

    public Core.Recipes.Recipe Recipe { get; private init; } = null!;

    public string Admin { get; }

    public string Reader { get; }

    public string Writer { get; }

    public string Incoming => Path.Combine(Engine.DataRoot, "vehicle-files", "incoming");

    public static async Task<OperatorHost> StartAsync(string recipe = "vehicle-files")
    {
        var engine = new Engine();
        new FileTypeCatalog(engine.Services.Metadata, engine.Services.Time).Add("vehicle-files", FleetType());
        var tokens = new TokenStore(engine.Services.Metadata, engine.Services.Time);
        var admin = tokens.Create("ops", TokenRole.Admin, "ops").Token;
        var reader = tokens.Create("acme", TokenRole.Reader, "reader").Token;
        var writer = tokens.Create("acme", TokenRole.Writer, "writer").Token;
        var host = new RecipeHost(Engine.LoadRecipe(recipe), engine.Services) { Http = new HttpServerOptions("127.0.0.1", 0), ServeManagement = true };
        var stop = new CancellationTokenSource();
        var run = host.RunAsync(stop.Token);
        var address = await host.HttpStarted.WaitAsync(Patience);
        return new OperatorHost(engine, host, stop, run, address, admin, reader, writer) { Recipe = host.Operations.Recipe };
    }

    /// <summary>A fleet file: <c>{"fleet": [...]}</c>; a record without <c>event_type</c> is quarantined, the others land.</summary>
    public static string Fleet(params string[] records) => "{\"fleet\": [\n" + string.Join(",\n", records) + "\n]}\n";

    public static string Record(string vehicle, string? type) =>
        $"{{\"vehicle_id\": \"{vehicle}\", \"event_time\": \"2024-05-01T10:00:00Z\", \"event_source\": \"sensor\"{(type is null ? "" : $", \"event_type\": \"{type}\"")}}}";

    public Task<(int Status, JsonElement Body)> GetAsync(string path, string? token = "admin") => SendAsync(HttpMethod.Get, path, null, token);

    public Task<(int Status, JsonElement Body)> PostAsync(string path, object? body, string? token = "admin") =>
        SendAsync(HttpMethod.Post, path, body is string text ? text : body is null ? null : JsonSerializer.Serialize(body), token);

    /// <summary>Polls a GET until <paramref name="done"/> holds for its body; the last body in the failure.</summary>
    public async Task<JsonElement> WaitAsync(string path, Func<JsonElement, bool> done)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var (status, body) = await GetAsync(path);
            status.ShouldBe(200, body.ToString());
            if (done(body)) { return body; }
            if (DateTime.UtcNow > deadline) { throw new TimeoutException($"GET {path} did not reach the expected state within {Patience.TotalSeconds:0} s: {body}"); }
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(Patience);
        }
        finally
        {
            await _host.DisposeAsync();
            _http.Dispose();
            _stop.Dispose();
            Engine.Dispose();
        }
    }

    private async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? json, string? token)
    {
        using var request = new HttpRequestMessage(method, path);
        var bearer = token switch { "admin" => Admin, "reader" => Reader, "writer" => Writer, _ => token };
        if (bearer is not null) { request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer); }
        if (json is not null) { request.Content = new StringContent(json, Encoding.UTF8, "application/json"); }
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return ((int)response.StatusCode, body);
    }

    private static FileType FleetType()
    {
        var errors = new ConfigErrors();
        var type = FileTypeParser.Parse(ConfigMap.Parse("""
            name: fleet_events
            pattern: "fleet_*.json"
            root_key: fleet
            table: raw_data.fleet_events
            event_time: event_time
            on_invalid: quarantine_rows
            fields:
              vehicle_id: string
              event_time: timestamp
              event_source: string
              event_type: { type: string, required: true }
            """, "fleet.yaml", errors)!);
        errors.ThrowIfAny();
        return type!;
    }
}
