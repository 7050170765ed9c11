using System.Globalization;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.Recipes.Generators;
using Sluice.Serving;
using Sluice.Serving.Auth;

namespace Sluice.Recipes.Demo;

/// <summary>
/// The tenant-analytics part of <c>sluice demo</c>: runs the recipe's HTTP server, creates tokens (a writer per tenant,
/// a reader, an admin), sends generated traffic for three tenants, and prints curl lines that work as they are.
/// If the port is taken it says so and leaves the rest of the demo running.
/// </summary>
public sealed class TenantAnalyticsDemo(Recipe recipe, IEngineServices services, Action<string> say)
{
    /// <summary>What the printed <c>./sluice</c> lines add so that they work on this data folder from the working directory (<c> --data DIR</c>, or nothing for the default).</summary>
    public string DataFlag { get; init; } = "";

    public const int Tenants = 3;

    public async Task RunAsync(HttpServerOptions http, double rate, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(http);
        var host = new RecipeHost(recipe, services) { Http = http };
        await using (host.ConfigureAwait(false))
        {
            // The traffic stops when the recipe fails; awaiting the run then reports why.
            using var traffic = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var running = host.RunAsync(ct).StopOnFailure(traffic);
            Uri address;
            try
            {
                address = await host.HttpStarted.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (SluiceException e)
            {
                say($"tenant-analytics not started: {e.Message}");
                return;
            }

            var store = new TokenStore(services.Metadata, services.Time);
            var writers = Enumerable.Range(1, Tenants).ToDictionary(i => $"tenant-{i}", i => store.Create($"tenant-{i}", TokenRole.Writer, "demo").Token, StringComparer.Ordinal);
            var reader = store.Create("tenant-1", TokenRole.Reader, "demo").Token;
            var admin = store.Create("ops", TokenRole.Admin, "demo console").Token;
            var url = address.ToString().TrimEnd('/');
            var today = services.Time.GetUtcNow().UtcDateTime.Date;
            var range = string.Create(CultureInfo.InvariantCulture, $"from={today:yyyy-MM-dd}&to={today.AddDays(1):yyyy-MM-dd}");
            var sample = string.Create(CultureInfo.InvariantCulture,
                $$$"""{"event_id":"hello-1","schema_version":2,"event_type":"purchase","event_ts":"{{{services.Time.GetUtcNow():yyyy-MM-dd'T'HH:mm:ss'Z'}}}","customer":{"id":"c-1","email":"ann@example.com","country":"DE"},"order":{"id":"o-1","total":42.5,"currency":"EUR"},"items":[{"sku":"SKU-1","qty":1,"price":42.5}],"session":{"id":"s-1","device":"web"}}""");
            say($"""
                console: {url}/ui/  (log in with the admin token below; API reference: {url}/docs)
                  admin token  {admin}
                tenant-analytics: serving {url}; {Tenants} tenants send {rate:0} events/s (tokens just created, valid until revoked)
                  curl -s {url}/healthz
                  curl -s -H "Authorization: Bearer {reader}" "{url}/v1/metrics?{range}&group_by=event_type"
                  curl -s -H "Authorization: Bearer {admin}" "{url}/v1/metrics?{range}&group_by=hour&tenant=tenant-2"
                  curl -s -X POST -H "Authorization: Bearer {writers["tenant-1"]}" -H "Content-Type: application/json" {url}/v1/streams/ecommerce/events -d '{sample}'
                  curl -s {url}/metrics | grep '^sluice_'
                  ./sluice query{DataFlag} "SELECT tenant_id, event_type, count(*) AS events FROM analytics.events GROUP BY ALL ORDER BY 1, 2"
                  ./sluice tokens list{DataFlag}
                """);
            var generator = new TenantAnalyticsGenerator(new TenantAnalyticsGeneratorOptions { Url = address, Tokens = writers, Rate = rate, BatchSize = 25 }, services.Time);
            var last = -1L;
            var stats = await generator.RunAsync(s =>
            {
                if (s.Accepted / 1000 != last / 1000)
                {
                    last = s.Accepted;
                    say($"http    {s}");
                }
            }, traffic.Token).ConfigureAwait(false);
            await running.ConfigureAwait(false);
            say($"tenant-analytics stopped: {stats}");
        }
    }
}
