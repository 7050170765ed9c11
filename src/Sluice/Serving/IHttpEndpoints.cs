using Microsoft.AspNetCore.Routing;
using Sluice.Core.Recipes;
using Sluice.Serving.Auth;
using Sluice.Serving.Observability;

namespace Sluice.Serving;

/// <summary>
/// Implemented by a running component that serves HTTP (the <c>http</c> ingest source, its query API). The recipe host
/// starts one <see cref="SluiceHttpServer"/> per process for all of them.
/// </summary>
public interface IHttpEndpoints
{
    /// <summary>Largest request body any of its endpoints accepts (the server's limit is the largest of all).</summary>
    long MaxRequestBodyBytes { get; }

    /// <summary>False when it cannot take requests (a failed landing log): <c>/healthz</c> then answers 503.</summary>
    bool Healthy { get; }

    /// <summary>Why it is not healthy (null when it is): <c>/healthz</c> answers it with the 503.</summary>
    string? Unhealthy => Healthy ? null : "a component cannot take requests";

    void MapEndpoints(IEndpointRouteBuilder routes, ServingContext context);

    /// <summary>The checkpoint keys of the pipeline's sinks, so the component can report each sink's lag.</summary>
    void AttachSinks(IReadOnlyList<(string Sink, string CheckpointKey)> sinks);
}

/// <summary>What endpoint handlers share: the engine, token checks and the metrics they update.</summary>
public sealed class ServingContext(IEngineServices services, TokenAuthenticator auth, ServerMetrics metrics)
{
    public IEngineServices Services { get; } = services;

    public TokenAuthenticator Auth { get; } = auth;

    public ServerMetrics Metrics { get; } = metrics;

    /// <summary>The console's logins (a session cookie stands for an admin token, see <see cref="Console.ConsoleSessions"/>).</summary>
    public Console.ConsoleSessions Sessions { get; } = new(services.Metadata, services.Time);
}

/// <summary>Where the server listens: <c>--bind</c> (default 127.0.0.1) and <c>--port</c> (default 7070; 0 picks a free port).</summary>
public sealed record HttpServerOptions(string Bind = "127.0.0.1", int Port = 7070)
{
    public const int DefaultPort = 7070;
}
