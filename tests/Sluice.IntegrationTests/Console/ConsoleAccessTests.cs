using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>Who may use the console and its routes, over plain HTTP (no browser): admins only, and a session cookie only with its CSRF header for changes.</summary>
public sealed partial class ConsoleAccessTests(ConsoleFixture fixture) : IClassFixture<ConsoleFixture>
{
    [Fact]
    public async Task Without_a_token_pages_go_to_the_login_form_and_apis_answer_401()
    {
        var page = await fixture.SendAsync(HttpMethod.Get, "/ui/files");
        page.Status.ShouldBe(HttpStatusCode.Redirect);
        page.Response.Headers.Location!.ToString().ShouldBe("/ui/login?next=%2Fui%2Ffiles");
        foreach (var api in new[] { "/api/files", "/api/tokens", "/api/recipes", "/api/status" })
        {
            (await fixture.SendAsync(HttpMethod.Get, api)).Status.ShouldBe(HttpStatusCode.Unauthorized, api);
        }

        (await fixture.SendAsync(HttpMethod.Post, "/api/tokens", content: Json("""{"tenant":"x","role":"admin"}"""))).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await fixture.SendAsync(HttpMethod.Get, "/ui/login")).Status.ShouldBe(HttpStatusCode.OK);
        (await fixture.SendAsync(HttpMethod.Get, "/ui/assets/app.js")).Status.ShouldBe(HttpStatusCode.OK);
        (await fixture.SendAsync(HttpMethod.Get, "/ui/assets/index.html")).Status.ShouldBe(HttpStatusCode.NotFound, "the page shell is served only behind the login");
        (await fixture.SendAsync(HttpMethod.Get, "/ui/nosuchpage")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("reader")]
    [InlineData("writer")]
    public async Task Readers_and_writers_are_refused_by_pages_apis_and_the_login_form(string role)
    {
        var token = role == "reader" ? fixture.ReaderToken : fixture.WriterToken;
        (await fixture.SendAsync(HttpMethod.Get, "/ui/", bearer: token)).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await fixture.SendAsync(HttpMethod.Get, "/api/files", bearer: token)).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await fixture.SendAsync(HttpMethod.Post, "/api/tokens", bearer: token, content: Json("""{"tenant":"acme","role":"admin"}"""))).Status.ShouldBe(HttpStatusCode.Forbidden);
        var login = await LogInAsync(token);
        login.Status.ShouldBe(HttpStatusCode.Forbidden);
        login.Body.ShouldContain($"this is a {role} token of tenant &#39;acme&#39;");
        login.Body.ShouldContain("need a process-wide admin token");
        login.Response.Headers.Contains("Set-Cookie").ShouldBeFalse();
    }

    [Fact]
    public async Task A_tenants_token_is_refused_by_the_console_and_every_management_route_and_by_another_tenants_data()
    {
        // The rule: reader and writer tokens are scoped to their tenant; an admin token is process-wide (its tenant
        // only names its holder). One process serves both kinds of route: the recipe's tenant data and the console.
        using var engine = new Support.Engine();
        await using var server = await TenantAnalytics.TenantAnalyticsServer.StartAsync(engine);
        var url = server.Address.ToString().TrimEnd('/');
        var beta = server.Token("beta", Sluice.Serving.Auth.TokenRole.Writer);
        var purchase = """{"event_id":"b1","tenant_id":"beta","schema_version":1,"event_type":"page_view","event_ts":"2025-11-08T10:00:00Z","customer":{"id":"c1"}}""";
        using (var landed = await server.PostAsync(beta, purchase)) { landed.StatusCode.ShouldBe(HttpStatusCode.Accepted); }
        var query = "/v1/metrics?from=2025-11-08T00:00:00Z&to=2025-11-09T00:00:00Z&group_by=event_type&tenant=beta";
        foreach (var role in new[] { Sluice.Serving.Auth.TokenRole.Reader, Sluice.Serving.Auth.TokenRole.Writer })
        {
            var alpha = server.Token("alpha", role);
            var name = role.ToString().ToLowerInvariant();
            var scoped = $"this is a {name} token of tenant 'alpha'";
            foreach (var (method, path) in new[] { ("GET", "/api/status"), ("GET", "/api/tap?pipeline=tenant-analytics/ecommerce"), ("GET", "/api/deadletters"), ("GET", "/api/jobs"), ("GET", "/api/tokens"), ("GET", "/api/files"), ("POST", "/api/deadletters/replay"), ("POST", "/api/tokens") })
            {
                var answer = await ConsoleFixture.SendToAsync(url, new HttpMethod(method), path, alpha, content: method == "POST" ? Json("""{"ids":[]}""") : null);
                answer.Status.ShouldBe(HttpStatusCode.Forbidden, $"{name} of alpha: {method} {path}");
                answer.Body.ShouldContain(scoped, customMessage: path);
                answer.Body.ShouldContain("process-wide admin token", customMessage: path);
            }

            var page = await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/ui/jobs", alpha);
            page.Status.ShouldBe(HttpStatusCode.Forbidden);
            page.Body.ShouldContain("process-wide admin token");
            var login = await ConsoleFixture.SendToAsync(url, HttpMethod.Post, "/ui/login", content: new FormUrlEncodedContent([new("token", alpha), new("next", "/ui/")]));
            login.Status.ShouldBe(HttpStatusCode.Forbidden);
            login.Body.ShouldContain($"this is a {name} token of tenant &#39;alpha&#39;");
            login.Response.Headers.Contains("Set-Cookie").ShouldBeFalse();

            // Another tenant's data through the recipe's own API: a reader cannot read it, a writer cannot write it.
            var read = await ConsoleFixture.SendToAsync(url, HttpMethod.Get, query, alpha);
            read.Status.ShouldBe(HttpStatusCode.Forbidden, $"{name} of alpha reading beta");
            var written = await ConsoleFixture.SendToAsync(url, HttpMethod.Post, "/v1/streams/ecommerce/events", alpha, content: Json(purchase.Replace("\"b1\"", $"\"a-{name}\"", StringComparison.Ordinal)));
            written.Status.ShouldBe(HttpStatusCode.Forbidden, $"{name} of alpha writing beta");
        }

        // An admin token is process-wide, whatever tenant labels it: the console, and beta's data when it names beta.
        var admin = server.Token("alpha", Sluice.Serving.Auth.TokenRole.Admin);
        (await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/ui/jobs", admin)).Status.ShouldBe(HttpStatusCode.OK);
        (await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/api/status", admin)).Status.ShouldBe(HttpStatusCode.OK);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var seen = await ConsoleFixture.SendToAsync(url, HttpMethod.Get, query, admin);
            seen.Status.ShouldBe(HttpStatusCode.OK, seen.Body);
            if (seen.Body.Contains("\"tenant\":\"beta\"", StringComparison.Ordinal) && seen.Body.Contains("page_view", StringComparison.Ordinal)) { break; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, seen.Body);
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Admin_bearer_token_needs_no_session_and_no_csrf_header()
    {
        var page = await fixture.SendAsync(HttpMethod.Get, "/ui/tokens", bearer: fixture.AdminToken);
        page.Status.ShouldBe(HttpStatusCode.OK);
        page.Body.ShouldNotContain(fixture.AdminToken);
        var created = await fixture.SendAsync(HttpMethod.Post, "/api/tokens", bearer: fixture.AdminToken, content: Json("""{"tenant":"acme","role":"reader","name":"bearer-made"}"""));
        created.Status.ShouldBe(HttpStatusCode.Created, created.Body);
        (await fixture.SendAsync(HttpMethod.Post, "/api/tokens", bearer: fixture.AdminToken, content: Json("""{"tenant":"acme","role":"owner"}"""))).Body.ShouldContain("unknown role 'owner'");
        (await fixture.SendAsync(HttpMethod.Post, "/api/tokens", bearer: fixture.AdminToken, content: Json("not json"))).Status.ShouldBe(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_session_cookie_changes_nothing_without_its_csrf_header_and_ends_at_logout()
    {
        var login = await LogInAsync(fixture.AdminToken);
        login.Status.ShouldBe(HttpStatusCode.Redirect);
        var setCookie = login.Response.Headers.GetValues("Set-Cookie").Single();
        setCookie.ShouldContain("httponly");
        setCookie.ShouldContain("samesite=strict");
        var cookie = CookieValue().Match(setCookie).Groups[1].Value;
        cookie.ShouldNotBeNullOrEmpty();
        setCookie.ShouldNotContain(fixture.AdminToken);

        var shell = await fixture.SendAsync(HttpMethod.Get, "/ui/", cookie: cookie);
        shell.Status.ShouldBe(HttpStatusCode.OK);
        shell.Body.ShouldNotContain(fixture.AdminToken);
        var csrf = CsrfMeta().Match(shell.Body).Groups[1].Value;
        csrf.Length.ShouldBeGreaterThan(20);
        (await fixture.SendAsync(HttpMethod.Get, "/api/tokens", cookie: cookie)).Status.ShouldBe(HttpStatusCode.OK, "reading needs no CSRF header");

        var before = await TokenCountAsync();
        var missing = await fixture.SendAsync(HttpMethod.Post, "/api/tokens", cookie: cookie, content: Json("""{"tenant":"acme","role":"admin"}"""));
        missing.Status.ShouldBe(HttpStatusCode.Forbidden);
        missing.Body.ShouldContain("X-Sluice-Csrf");
        (await fixture.SendAsync(HttpMethod.Post, "/api/tokens", cookie: cookie, csrf: csrf[..^2] + "xx", content: Json("""{"tenant":"acme","role":"admin"}"""))).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await fixture.SendAsync(HttpMethod.Post, "/api/tokens/nosuch/revoke", cookie: cookie)).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await TokenCountAsync()).ShouldBe(before, "nothing was created without the CSRF header");
        var created = await fixture.SendAsync(HttpMethod.Post, "/api/tokens", cookie: cookie, csrf: csrf, content: Json("""{"tenant":"acme","role":"reader"}"""));
        created.Status.ShouldBe(HttpStatusCode.Created, created.Body);

        (await fixture.SendAsync(HttpMethod.Post, "/ui/logout", cookie: cookie)).Status.ShouldBe(HttpStatusCode.Forbidden, "logout is a change too");
        (await fixture.SendAsync(HttpMethod.Post, "/ui/logout", cookie: cookie, csrf: csrf)).Status.ShouldBe(HttpStatusCode.OK);
        (await fixture.SendAsync(HttpMethod.Get, "/api/tokens", cookie: cookie)).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await fixture.SendAsync(HttpMethod.Get, "/ui/", cookie: cookie)).Status.ShouldBe(HttpStatusCode.Redirect);
        (await fixture.SendAsync(HttpMethod.Get, "/api/tokens", cookie: "made-up-session-id")).Status.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Revoking_the_admin_token_ends_its_sessions_and_a_login_from_another_site_is_refused()
    {
        var admin = await fixture.CreateTokenAsync("admin", "ops");
        var cookie = CookieValue().Match((await LogInAsync(admin)).Response.Headers.GetValues("Set-Cookie").Single()).Groups[1].Value;
        (await fixture.SendAsync(HttpMethod.Get, "/api/files", cookie: cookie)).Status.ShouldBe(HttpStatusCode.OK);
        var id = admin.Split('_')[1];
        (await fixture.SendAsync(HttpMethod.Post, $"/api/tokens/{id}/revoke", bearer: fixture.AdminToken)).Status.ShouldBe(HttpStatusCode.OK);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await fixture.SendAsync(HttpMethod.Get, "/api/files", cookie: cookie)).Status != HttpStatusCode.Unauthorized)
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the session of a revoked token ends (within a second on a quiet machine)");
            await Task.Delay(200);
        }

        var listed = await fixture.SendAsync(HttpMethod.Get, "/api/tokens", bearer: fixture.AdminToken);
        listed.Body.ShouldContain($"\"id\":\"{id}\"");
        listed.Body.ShouldNotContain(admin, customMessage: "no secret is ever listed");
        listed.Body.ShouldNotContain("sk_");

        using var form = new FormUrlEncodedContent([new("token", fixture.AdminToken)]);
        using var handler = new HttpClientHandler { AllowAutoRedirect = false };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(fixture.Url) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/ui/login") { Content = form };
        request.Headers.Add("Origin", "http://evil.example");
        request.Headers.Add("Sec-Fetch-Site", "cross-site");
        using var response = await http.SendAsync(request);
        response.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        response.Headers.Contains("Set-Cookie").ShouldBeFalse();
    }

    private Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> LogInAsync(string token) =>
        fixture.SendAsync(HttpMethod.Post, "/ui/login", content: new FormUrlEncodedContent([new("token", token), new("next", "/ui/files")]));

    private async Task<int> TokenCountAsync() =>
        Regex.Count((await fixture.SendAsync(HttpMethod.Get, "/api/tokens", bearer: fixture.AdminToken)).Body, "\"id\":");

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    [GeneratedRegex("sluice_session=([^;]+)")]
    private static partial Regex CookieValue();

    [GeneratedRegex("<meta name=\"sluice-csrf\" content=\"([^\"]*)\">")]
    private static partial Regex CsrfMeta();
}
