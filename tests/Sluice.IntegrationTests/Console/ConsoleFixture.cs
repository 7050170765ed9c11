using System.Net;
using Microsoft.Playwright;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>
/// One <c>sluice run vehicle-files</c> for the console tests, with an admin, a reader and a writer token, a good file
/// and a broken one already processed; and one headless Chromium (Debian's, driven by Playwright), started on first use.
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime, IDisposable
{
    /// <summary>Debian's chromium package (scripts/services.sh installs it); Playwright's own browser download is not used.</summary>
    public const string Chromium = "/usr/bin/chromium";

    public const string BadFile = "vehicles_events_bad.json";

    private readonly TempFolder _data = new("sluice-console");
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private SluiceProcess? _run;

    public string Data => _data.Path;

    public string Url { get; private set; } = "";

    public string AdminToken { get; private set; } = "";

    public string ReaderToken { get; private set; } = "";

    public string WriterToken { get; private set; } = "";

    /// <summary>Where the screenshots go: the test output, and docs/images/console when SLUICE_CONSOLE_SCREENSHOTS names that folder.</summary>
    public static string ScreenshotFolder { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "console-screenshots")).FullName;

    public async Task InitializeAsync()
    {
        AdminToken = await CreateTokenAsync("admin", "ops");
        ReaderToken = await CreateTokenAsync("reader", "acme");
        WriterToken = await CreateTokenAsync("writer", "acme");
        _run = SluiceProcess.Start(Data, "run", "vehicle-files");
        Url = (await WaitForFileAsync(Data, "vehicle-files", _run, TimeSpan.FromSeconds(120))).Url;
        var incoming = Path.Combine(Data, "vehicle-files", "incoming");
        VehicleFiles.Write(incoming, "vehicles_events_good.json", VehicleFiles.Events(("v1", "2024-05-01T10:00:00Z", "start"), ("v2", "2024-05-01T11:00:00Z", "stop"), ("v3", "2024-05-02T09:00:00Z", "start")));
        VehicleFiles.Write(incoming, BadFile, VehicleFiles.Events(("v9", "not a time", "start")));
        await WaitForMetricsAsync(Url, TimeSpan.FromSeconds(60),
            "sluice_pipeline_records_in_total{recipe=\"vehicle-files\",pipeline=\"ingest\"} 3",
            "sluice_pipeline_backlog{recipe=\"vehicle-files\",pipeline=\"ingest\",unit=\"files\"} 0");
    }

    public async Task<string> CreateTokenAsync(string role, string tenant)
    {
        var created = await SluiceProcess.RunAsync(Data, "tokens", "create", "--role", role, "--tenant", tenant);
        created.Code.ShouldBe(0, created.Err);
        return created.Out.Trim().Split('\n')[^1];
    }

    /// <summary>A fresh browser context (no cookies) at the given viewport.</summary>
    public async Task<IPage> PageAsync(int width = 1280, int height = 800)
    {
        if (_browser is null)
        {
            _playwright = await Playwright.CreateAsync();
            _browser = await LaunchChromiumAsync(_playwright);
        }

        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = width, Height = height }, BaseURL = Url });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    /// <summary>Debian's headless Chromium as every console test drives it.</summary>
    public static Task<IBrowser> LaunchChromiumAsync(IPlaywright playwright) => playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = Chromium,
        Headless = true,
        ChromiumSandbox = false,
        // Playwright gives each launch a fresh user-data-dir of its own; these keep Chromium off the network.
        Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });

    /// <summary>Logs the page in through the login form with the admin token.</summary>
    public async Task LogInAsync(IPage page, string next = "/ui/")
    {
        await page.GotoAsync(next);
        await page.WaitForURLAsync("**/ui/login**");
        await page.FillAsync("#token", AdminToken);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(u => !u.Contains("/ui/login", StringComparison.Ordinal));
    }

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        var file = Path.Combine(ScreenshotFolder, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = file, FullPage = false });
        if (Environment.GetEnvironmentVariable("SLUICE_CONSOLE_SCREENSHOTS") is { Length: > 0 } docs)
        {
            Directory.CreateDirectory(docs);
            File.Copy(file, Path.Combine(docs, name + ".png"), overwrite: true);
        }
    }

    /// <summary>A request without a browser: (status, body, headers) with optional bearer, cookie and CSRF header.</summary>
    public Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> SendAsync(
        HttpMethod method, string path, string? bearer = null, string? cookie = null, string? csrf = null, HttpContent? content = null) =>
        SendToAsync(Url, method, path, bearer, cookie, csrf, content);

    /// <summary>As <see cref="SendAsync"/>, to another process's server.</summary>
    public static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> SendToAsync(
        string url, HttpMethod method, string path, string? bearer = null, string? cookie = null, string? csrf = null, HttpContent? content = null)
    {
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(url) };
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (bearer is not null) { request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer); }
        if (cookie is not null) { request.Headers.Add("Cookie", $"sluice_session={cookie}"); }
        if (csrf is not null) { request.Headers.Add("X-Sluice-Csrf", csrf); }
        var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) { await _browser.CloseAsync(); }
        _playwright?.Dispose();
        if (_run is not null)
        {
            await _run.StopAsync();
            _run.Dispose();
        }

    }

    public void Dispose() => _data.Dispose();
}
