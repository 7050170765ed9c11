using System.Net;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

public sealed class AuthAndIsolationTests
{
    private static string Event(string id, string? tenant = null, string type = "page_view", string customer = "c1") =>
        "{\"event_id\":\"" + id + "\"," + (tenant is null ? "" : "\"tenant_id\":\"" + tenant + "\",") +
        "\"schema_version\":1,\"event_type\":\"" + type + "\",\"event_ts\":\"2025-11-08T10:00:00Z\",\"customer\":{\"id\":\"" + customer + "\"}" +
        (type == "purchase" ? ",\"order\":{\"id\":\"o-" + id + "\",\"total\":10.0,\"currency\":\"EUR\"}" : "") + "}";

    private const string Query = "/v1/metrics?from=2025-11-08T00:00:00Z&to=2025-11-09T00:00:00Z&group_by=event_type";

    [Fact]
    public async Task Every_role_and_tenant_combination_gets_exactly_its_own_rows_on_every_endpoint()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var tokens = new Dictionary<(string Tenant, TokenRole Role), string>();
        foreach (var tenant in new[] { "alpha", "beta" })
        {
            foreach (var role in Enum.GetValues<TokenRole>()) { tokens[(tenant, role)] = server.Token(tenant, role); }
        }

        // Ingest: only writers, only for their own tenant; readers and admins cannot write.
        foreach (var ((tenant, role), token) in tokens)
        {
            var other = tenant == "alpha" ? "beta" : "alpha";
            using var own = await server.PostAsync(token, Event($"{tenant}-{role}", tenant, "purchase", $"{tenant}-c"));
            own.StatusCode.ShouldBe(role == TokenRole.Writer ? HttpStatusCode.Accepted : HttpStatusCode.Forbidden, $"{role} of {tenant} posting its own tenant");
            using var implicitTenant = await server.PostAsync(token, Event($"{tenant}-{role}-implicit", null, "page_view", $"{tenant}-c2"));
            implicitTenant.StatusCode.ShouldBe(role == TokenRole.Writer ? HttpStatusCode.Accepted : HttpStatusCode.Forbidden);
            // A batch with one event of the other tenant is refused whole: not even the good event lands.
            using var foreign = await server.PostAsync(token, $"[{Event($"{tenant}-{role}-ok", tenant)},{Event($"{tenant}-{role}-foreign", other)}]");
            foreign.StatusCode.ShouldBe(HttpStatusCode.Forbidden, $"{role} of {tenant} posting tenant {other}");
        }

        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 4)).ShouldBe(4);
        engine.Count("SELECT count(*) FROM analytics.events WHERE event_id LIKE '%-ok' OR event_id LIKE '%-foreign'").ShouldBe(0);
        engine.Count("SELECT count(*) FROM analytics.events WHERE tenant_id = 'alpha' AND customer_id LIKE 'alpha-%'").ShouldBe(2);

        // Query: readers see their own tenant (naming it is allowed, naming another is 403); admins must name one and see it; writers cannot query.
        foreach (var ((tenant, role), token) in tokens)
        {
            var other = tenant == "alpha" ? "beta" : "alpha";
            var (plain, plainBody) = await server.GetJsonAsync(token, Query);
            var (named, namedBody) = await server.GetJsonAsync(token, Query + "&tenant=" + tenant);
            var (otherStatus, otherBody) = await server.GetJsonAsync(token, Query + "&tenant=" + other);
            switch (role)
            {
                case TokenRole.Writer:
                    (plain, named, otherStatus).ShouldBe((403, 403, 403));
                    break;
                case TokenRole.Reader:
                    plain.ShouldBe(200);
                    named.ShouldBe(200);
                    otherStatus.ShouldBe(403);
                    otherBody.GetProperty("parameter").GetString().ShouldBe("tenant");
                    ShouldSeeOnly(plainBody, tenant);
                    ShouldSeeOnly(namedBody, tenant);
                    break;
                case TokenRole.Admin:
                    plain.ShouldBe(400);
                    plainBody.GetProperty("parameter").GetString().ShouldBe("tenant");
                    named.ShouldBe(200);
                    otherStatus.ShouldBe(200);
                    ShouldSeeOnly(namedBody, tenant);
                    ShouldSeeOnly(otherBody, other);
                    break;
            }
        }

        // No token, a malformed header, an unknown token: 401 everywhere; /healthz needs none.
        foreach (var header in new string?[] { null, "sk_nope_nope" })
        {
            using var post = await server.PostAsync(header, Event("anon"));
            post.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
            post.Headers.WwwAuthenticate.ToString().ShouldContain("Bearer");
            (await server.GetJsonAsync(header, Query)).Status.ShouldBe(401);
        }

        (await server.GetJsonAsync(null, "/healthz")).Status.ShouldBe(200);
        (await server.Client.GetStringAsync("/openapi/v1.json")).ShouldContain("/v1/metrics");
    }

    private static void ShouldSeeOnly(System.Text.Json.JsonElement body, string tenant)
    {
        body.GetProperty("tenant").GetString().ShouldBe(tenant);
        var rows = body.GetProperty("rows").EnumerateArray().ToList();
        rows.Sum(r => r.GetProperty("events").GetInt64()).ShouldBe(2);
        rows.Sum(r => r.GetProperty("unique_customers").GetInt64()).ShouldBe(2);
    }

    [Fact]
    public async Task Revoked_tokens_and_writers_limited_to_other_streams_are_refused()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var store = new TokenStore(engine.Services.Metadata, engine.Services.Time);
        var (info, token) = store.Create("gamma", TokenRole.Writer, "temp");
        using (var ok = await server.PostAsync(token, Event("g1")))
        {
            ok.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        store.Revoke(info.Id).ShouldBeTrue();
        // The cached answer dates from g1, before the revoke: once CacheFor has passed, the next request checks again,
        // however long an accepted request takes to become durable on a busy disk.
        await Task.Delay(TokenAuthenticator.CacheFor + TimeSpan.FromMilliseconds(100));
        using (var after = await server.PostAsync(token, Event("g2")))
        {
            after.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        }

        var limited = server.Token("gamma", TokenRole.Writer, "salesforce");
        using var refused = await server.PostAsync(limited, Event("g3"));
        refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await refused.Content.ReadAsStringAsync()).ShouldContain("salesforce");
        store.List().Select(t => t.Id).ShouldNotContain(info.Id);
        store.List(includeRevoked: true).Single(t => t.Id == info.Id).RevokedAt.ShouldNotBeNull();
    }

    [Fact]
    public async Task Sql_injection_in_every_query_parameter_is_refused_or_harmless()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var writer = server.Token("delta", TokenRole.Writer);
        using (var ok = await server.PostAsync(writer, Event("d1", "delta")))
        {
            ok.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events", 1)).ShouldBe(1);
        var reader = server.Token("other", TokenRole.Reader);
        var admin = server.Token("ops", TokenRole.Admin);
        string[] attacks = ["' OR '1'='1", "x'; DROP TABLE analytics.events; --", "1) UNION SELECT tenant_id, 1, 1, 1 FROM analytics.events --", "\"; SELECT 1; --", "%27%20OR%201=1--"];
        foreach (var attack in attacks)
        {
            var a = Uri.EscapeDataString(attack);
            (await server.GetJsonAsync(reader, $"/v1/metrics?from={a}&to=2025-11-09&group_by=day")).ShouldSatisfyAllConditions(r => r.Status.ShouldBe(400), r => r.Body.GetProperty("parameter").GetString().ShouldBe("from"));
            (await server.GetJsonAsync(reader, $"/v1/metrics?from=2025-11-08&to={a}&group_by=day")).ShouldSatisfyAllConditions(r => r.Status.ShouldBe(400), r => r.Body.GetProperty("parameter").GetString().ShouldBe("to"));
            (await server.GetJsonAsync(reader, $"/v1/metrics?from=2025-11-08&to=2025-11-09&group_by={a}")).ShouldSatisfyAllConditions(r => r.Status.ShouldBe(400), r => r.Body.GetProperty("parameter").GetString().ShouldBe("group_by"));
            (await server.GetJsonAsync(reader, $"/v1/metrics?from=2025-11-08&to=2025-11-09&tenant={a}")).Status.ShouldBe(403);
            (await server.GetJsonAsync(reader, $"/v1/metrics?from=2025-11-08&to=2025-11-09&{a}=1")).Status.ShouldBe(400);
            // An admin may name any tenant: the text is only ever a parameter value, so it matches no rows.
            var (status, body) = await server.GetJsonAsync(admin, $"/v1/metrics?from=2025-11-08&to=2025-11-09&tenant={a}");
            status.ShouldBe(200);
            body.GetProperty("rows").GetArrayLength().ShouldBe(0);
        }

        engine.Count("SELECT count(*) FROM analytics.events").ShouldBe(1);
        var (_, delta) = await server.GetJsonAsync(admin, "/v1/metrics?from=2025-11-08&to=2025-11-09&tenant=delta");
        delta.GetProperty("rows")[0].GetProperty("events").GetInt64().ShouldBe(1);
    }
}
