using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Sluice.Testing;

/// <summary>A small web server on 127.0.0.1 and a free port, logging nothing: what <c>sluice test</c> plays a recipe's APIs with.</summary>
internal static class LoopbackServer
{
    public static async Task<WebApplication> StartAsync(Action<WebApplication> map, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        map(app);
        await app.StartAsync(ct).ConfigureAwait(false);
        return app;
    }
}
