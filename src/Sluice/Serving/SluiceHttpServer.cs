using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Serving.Auth;
using Sluice.Serving.Observability;
using Sluice.Serving.OpenApi;

namespace Sluice.Serving;

/// <summary>
/// The one HTTP server of a Sluice process (Kestrel, minimal APIs): <c>/healthz</c>, <c>/metrics</c> (Prometheus text),
/// <c>/openapi/v1.json</c>, and whatever the running components map (ingest, query API). Started by the recipe host
/// when a recipe has an HTTP part; stopping lets requests in flight finish (bounded by <see cref="StopTimeout"/>).
/// </summary>
public sealed class SluiceHttpServer : IAsyncDisposable
{
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Open connections at most (Kestrel refuses more); bounds the per-request state the components hold.</summary>
    public const int MaxConnections = 10_000;

    /// <summary>
    /// Slowest request body accepted by default, bytes per second: 32 kbit/s, below what even a 2G phone link uploads,
    /// so a client sending a body it has ready is never cut; a client trickling a body to hold server memory is
    /// (Kestrel's own 240 B/s lets a 400 B/s trickle through). A component may set its own per request.
    /// </summary>
    public const long DefaultMinBodyRate = 4 * 1024;

    /// <summary>Time a body may start slower than the rate (Kestrel's default: a TCP slow start, a client's pause for GC).</summary>
    public static readonly TimeSpan DefaultBodyRateGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Time to receive a request's headers (Kestrel's default is 30 s): a client sends them in one go, a few hundred
    /// bytes, so 10 s covers a slow handshake on a bad link while a client dribbling headers holds a connection slot
    /// for a third of the time.
    /// </summary>
    public static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(10);

    private readonly WebApplication _app;
    private readonly ILogger _log;

    private SluiceHttpServer(WebApplication app, Uri address, ServerMetrics metrics, string managementKey, ILogger log)
    {
        _app = app;
        Address = address;
        Metrics = metrics;
        ManagementKey = managementKey;
        _log = log;
    }

    /// <summary>What the <c>/api/</c> management routes ask for (besides an admin token): 256 random bits, new for every server.</summary>
    public string ManagementKey { get; }

    /// <summary>Where it listens (with the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    public ServerMetrics Metrics { get; }

    /// <summary>Every route the server maps (method and pattern), as routing knows them.</summary>
    public IReadOnlyList<(string Method, string Pattern)> Routes =>
        _app.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints.OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IHttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (m, e.RoutePattern.RawText ?? "/")))
            .ToList();

    public static async Task<SluiceHttpServer> StartAsync(IEngineServices services, HttpServerOptions options, IReadOnlyList<IHttpEndpoints> components, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(components);
        var address = options.Bind == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Bind, out var parsed) ? parsed
            : throw new SluiceException($"--bind: '{options.Bind}' is not an IP address (for example 127.0.0.1, 0.0.0.0 or ::1).");
        if (options.Port is < 0 or > 65535)
        {
            throw new SluiceException($"--port: {options.Port} is not a TCP port (0-65535).");
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "Sluice", ContentRootPath = services.Data.Root });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ILoggerFactory>(new QuietHostLogging(services.Logging));
        // The CLI owns Ctrl-C and SIGTERM (it cancels the host, which stops this server in order); Kestrel must not.
        builder.Services.AddSingleton<IHostLifetime, OwnedLifetime>();
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer<RouteDocument>());
        // A NaN or infinity already in the lake (a file another tool wrote) is answered as the text "NaN" or "Infinity":
        // the serializer's default throws on it, which turned one such value into a 500 for every reader of a tenant.
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.NumberHandling |= System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals);
        var maxBody = components.Count == 0 ? 1L << 20 : components.Max(c => c.MaxRequestBodyBytes);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxBody;
            // Each connection is small, but request waiters and buffers scale with them: this is their bound.
            k.Limits.MaxConcurrentConnections = MaxConnections;
            k.Limits.MinRequestBodyDataRate = new MinDataRate(DefaultMinBodyRate, DefaultBodyRateGrace);
            k.Limits.RequestHeadersTimeout = RequestHeadersTimeout;
            k.Listen(address, options.Port);
        });

        var app = builder.Build();
        app.Use(QueryParameterCheck.InvokeAsync);
        var metrics = new ServerMetrics();
        ProcessGauges.Register(metrics);
        var context = new ServingContext(services, new TokenAuthenticator(new TokenStore(services.Metadata, services.Time), services.Time), metrics);
        app.MapGet("/healthz", () => Health(services.Health, components))
            .WithSummary("Liveness: 200 once ingest is accepted, 503 with the reasons when a component cannot take requests or failed. No token needed.")
            .Access(ApiAccess.Anyone);
        StatusMetrics.Register(metrics, services.Status);
        app.MapGet("/metrics", async (HttpContext http) =>
            {
                http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
                await metrics.WriteAsync(http.Response.Body, http.RequestAborted).ConfigureAwait(false);
            })
            .WithSummary("Prometheus metrics: every pipeline's and sink's records, batches, lag and backlog, replication slots, dead letters, jobs; ingest events, latency and buffers; the process.")
            .Access(ApiAccess.Anyone);
        var key = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        Management.ManagementEndpoints.Map(app, context, key, () => Problems(services.Health, components));
        Console.ConsoleEndpoints.Map(app, context, key);
        Console.ConsoleApi.Map(app, context, key);
        app.MapOpenApi().WithSummary("This document: every route of the process, who may call it, and the request bodies from the recipes' schemas.").Access(ApiAccess.Anyone);
        ApiReferencePage.Map(app);
        foreach (var component in components)
        {
            component.MapEndpoints(app, context);
        }

        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw new SluiceException($"cannot listen on {options.Bind}:{options.Port}: {e.Message} (another program uses the port? choose one with --port)", e);
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? $"http://{options.Bind}:{options.Port}";
        var uri = new Uri(bound.Replace("[::]", "[::1]", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        var log = services.Logging.CreateLogger("Sluice.Http");
        ServingLog.Listening(log, bound);
        return new SluiceHttpServer(app, uri, metrics, key, log);
    }

    /// <summary>What the process reports as failing (a failed pipeline, ...) and the components that cannot take requests.</summary>
    private static IResult Health(HealthState health, IReadOnlyList<IHttpEndpoints> components)
    {
        var problems = Problems(health, components).Select(p => new HealthProblem(p.Component, p.Reason)).ToList();
        var degraded = health.Degraded.Select(f => new HealthProblem(f.Component, f.Reason)).ToList();
        if (problems.Count > 0)
        {
            return Results.Json(new { status = "unavailable", problems = problems.Concat(degraded) }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }

        // Degraded still serves (200): a probe must not restart a process that works, but the body says what needs attention.
        return degraded.Count == 0 ? Results.Json(new { status = "ok" }) : Results.Json(new { status = "degraded", problems = degraded });
    }

    private static List<(string Component, string Reason)> Problems(HealthState health, IReadOnlyList<IHttpEndpoints> components) =>
        health.Failures.Concat(components.Select(c => c.Unhealthy is { } reason ? (c.GetType().Name, reason) : default).Where(p => p.Item1 is not null)).ToList();

    private sealed record HealthProblem(string Component, string Reason);

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(StopTimeout);
        try
        {
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ServingLog.StopTimedOut(_log, StopTimeout.TotalSeconds);
        }

        await _app.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The engine's logging, minus the generic host's own failure log: a failed start is reported once, as a SluiceException.</summary>
    private sealed class QuietHostLogging(ILoggerFactory inner) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) =>
            categoryName.StartsWith("Microsoft.Extensions.Hosting", StringComparison.Ordinal) ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : inner.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public void Dispose()
        {
            // The engine owns the inner factory.
        }
    }

    private sealed class OwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

internal static partial class ServingLog
{
    [LoggerMessage(37000, LogLevel.Information, "Serving HTTP on {Address}")]
    public static partial void Listening(ILogger logger, string address);

    [LoggerMessage(37001, LogLevel.Warning, "HTTP requests still running after {Seconds} s at shutdown were cut off")]
    public static partial void StopTimedOut(ILogger logger, double seconds);
}
