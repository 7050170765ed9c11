using System.Net;
using System.Text.RegularExpressions;
using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.OperationsConsole;

/// <summary>Console sessions live in the metadata store: a process killed and started again still knows its logins.</summary>
public sealed partial class ConsoleSessionRestartTests
{
    [Fact]
    public async Task A_login_survives_a_killed_and_restarted_process_and_revoking_its_token_still_ends_it()
    {
        using var data = new TempFolder("sluice-console-restart");
        var created = await SluiceProcess.RunAsync(data.Path, "tokens", "create", "--role", "admin", "--tenant", "ops");
        created.Code.ShouldBe(0, created.Err);
        var admin = created.Out.Trim().Split('\n')[^1];

        string cookie, csrf;
        using (var first = SluiceProcess.Start(data.Path, "run", "vehicle-files", "--port", "0"))
        {
            var url = (await WaitForFileAsync(data.Path, "vehicle-files", first, TimeSpan.FromSeconds(120))).Url;
            var login = await ConsoleFixture.SendToAsync(url, HttpMethod.Post, "/ui/login", content: new FormUrlEncodedContent([new("token", admin), new("next", "/ui/")]));
            login.Status.ShouldBe(HttpStatusCode.Redirect, login.Body);
            cookie = CookieValue().Match(login.Response.Headers.GetValues("Set-Cookie").Single()).Groups[1].Value;
            csrf = CsrfMeta().Match((await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/ui/", cookie: cookie)).Body).Groups[1].Value;
            csrf.ShouldNotBeNullOrEmpty();
            first.Kill();
        }

        // Neither the session id nor the token is in the store: only the id's hash.
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        var store = File.ReadAllBytes(Path.Combine(data.Path, "meta.db")).Concat(File.Exists(Path.Combine(data.Path, "meta.db-wal")) ? File.ReadAllBytes(Path.Combine(data.Path, "meta.db-wal")) : []);
        var text = System.Text.Encoding.ASCII.GetString(store.ToArray());
        text.ShouldNotContain(cookie);
        text.ShouldNotContain(admin);

        using var second = SluiceProcess.Start(data.Path, "run", "vehicle-files", "--port", "0");
        try
        {
            // The killed process's management file may still be there: wait for the new one's.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            var file = await WaitForFileAsync(data.Path, "vehicle-files", second, TimeSpan.FromSeconds(120));
            while (file.Pid != second.Pid)
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, second.Stderr);
                await Task.Delay(100);
                file = await WaitForFileAsync(data.Path, "vehicle-files", second, TimeSpan.FromSeconds(120));
            }

            var url = file.Url;
            (await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/api/files", cookie: cookie)).Status.ShouldBe(HttpStatusCode.OK, "the session opened before the restart still holds");
            var shell = await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/ui/files", cookie: cookie);
            shell.Status.ShouldBe(HttpStatusCode.OK);
            CsrfMeta().Match(shell.Body).Groups[1].Value.ShouldBe(csrf, "the same session, with the same CSRF value");
            var made = await ConsoleFixture.SendToAsync(url, HttpMethod.Post, "/api/tokens", cookie: cookie, csrf: csrf,
                content: new StringContent("""{"tenant":"acme","role":"reader"}""", System.Text.Encoding.UTF8, "application/json"));
            made.Status.ShouldBe(HttpStatusCode.Created, made.Body);

            var revoked = await SluiceProcess.RunAsync(data.Path, "tokens", "revoke", admin.Split('_')[1]);
            revoked.Code.ShouldBe(0, revoked.Err);
            deadline = DateTime.UtcNow.AddSeconds(60);
            while ((await ConsoleFixture.SendToAsync(url, HttpMethod.Get, "/api/files", cookie: cookie)).Status != HttpStatusCode.Unauthorized)
            {
                DateTime.UtcNow.ShouldBeLessThan(deadline, "the session of a token revoked by another process ends (within a second on a quiet machine)");
                await Task.Delay(200);
            }
        }
        finally
        {
            await second.StopAsync();
        }
    }

    [GeneratedRegex("sluice_session=([^;]+)")]
    private static partial Regex CookieValue();

    [GeneratedRegex("<meta name=\"sluice-csrf\" content=\"([^\"]*)\">")]
    private static partial Regex CsrfMeta();
}
