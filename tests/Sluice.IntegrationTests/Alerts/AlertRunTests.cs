using Sluice.IntegrationTests.Support;
using static Sluice.IntegrationTests.Management.ManagementClientSide;

namespace Sluice.IntegrationTests.Alerts;

/// <summary>A recipe's alerts in a running <c>sluice run</c>: they fire, notify once, and show in /readyz, /api/status and <c>sluice status</c>.</summary>
public class AlertRunTests
{
    private const string Alerts = """

        alerts:
          check_every: 200ms
          webhook: {url: "${ALERT_HOOK_URL}", retry_delay: 100ms}
          rules:
            bad-files: {kind: dead_letters, more_than: 0, within: 1h, severity: critical}
            summary-failing: {kind: job_failed, job: daily-summary}
        """;

    [Fact]
    public async Task A_critical_alert_fires_once_turns_readiness_red_shows_in_status_and_is_not_sent_again_after_a_restart()
    {
        using var data = new TempFolder();
        using var recipes = new TempFolder("sluice-alert-recipe");
        var recipe = CopyRecipe("vehicle-files", recipes.Sub("vehicle-files"));
        // The test's own alerts in place of the shipped ones.
        var yaml = File.ReadAllText(Path.Combine(recipe, "recipe.yaml"));
        File.WriteAllText(Path.Combine(recipe, "recipe.yaml"), yaml[..yaml.IndexOf("\nalerts:", StringComparison.Ordinal)] + Alerts);
        using var hook = new WebhookReceiver();
        var env = new Dictionary<string, string> { ["ALERT_HOOK_URL"] = hook.Url };

        using (var run = SluiceProcess.Start(data.Path, env, "run", recipe, "--port", "0"))
        {
            var file = await WaitForFileAsync(data.Path, "vehicle-files", run, TimeSpan.FromSeconds(120));
            var ready = await GetAsync(file.Url + "/readyz");
            ready.Status.ShouldBe(200, ready.Body);
            Json(ready.Body).GetProperty("alerts").GetArrayLength().ShouldBe(0);

            VehicleFiles.Write(Path.Combine(data.Path, "vehicle-files", "incoming"), "vehicles_events_bad.json", "not json at all");
            await Until(() => hook.Accepted.Count >= 1, run);
            var notice = hook.Accepted.ShouldHaveSingleItem();
            notice.GetProperty("alert").GetString().ShouldBe("bad-files");
            notice.GetProperty("status").GetString().ShouldBe("firing");
            notice.GetProperty("message").GetString().ShouldBe("dead letters of vehicle-files: 1 new in the last 1 h, more than 0");

            ready = await GetAsync(file.Url + "/readyz");
            ready.Status.ShouldBe(503, "a critical alert fires");
            var firing = Json(ready.Body).GetProperty("alerts").EnumerateArray().ShouldHaveSingleItem();
            firing.GetProperty("alert").GetString().ShouldBe("bad-files");
            firing.GetProperty("severity").GetString().ShouldBe("critical");

            var api = await GetAsync(file.Url + "/api/status", file.Key);
            api.Status.ShouldBe(200);
            var alerts = Json(api.Body).GetProperty("alerts").EnumerateArray().ToList();
            alerts.Select(a => (a.GetProperty("alert").GetString(), a.GetProperty("state").GetString())).ShouldBe([("bad-files", "firing"), ("summary-failing", "ok")]);

            var status = await SluiceProcess.RunAsync(data.Path, "status", "--format", "json");
            status.Code.ShouldBe(0, status.Err);
            Json(status.Out).GetProperty("alerts")[0].GetProperty("state").GetString().ShouldBe("firing");
            var table = await SluiceProcess.RunAsync(data.Path, "status");
            table.Out.ShouldContain("vehicle-files/bad-files");
            table.Out.ShouldContain("firing");

            (await run.StopAsync()).ShouldBe(0, run.Stderr);
        }

        // Started again with the letter still new: the alert fires on, from the stored state, and is not sent again.
        using (var run = SluiceProcess.Start(data.Path, env, "run", recipe, "--port", "0"))
        {
            var file = await WaitForFileAsync(data.Path, "vehicle-files", run, TimeSpan.FromSeconds(120));
            await Until(() => run.Stderr.Contains("checking 2 alert(s)", StringComparison.Ordinal), run);
            // Five checks' worth: a notice would have gone in the first.
            await Task.Delay(TimeSpan.FromSeconds(1));
            hook.Requests.ShouldBe(1);
            var api = await GetAsync(file.Url + "/api/status", file.Key);
            Json(api.Body).GetProperty("alerts")[0].GetProperty("state").GetString().ShouldBe("firing");
            (await run.StopAsync()).ShouldBe(0, run.Stderr);
        }
    }

    private static async Task Until(Func<bool> condition, SluiceProcess run)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline || run.HasExited) { throw new TimeoutException($"condition not met; the run said: {run.Stderr}"); }
            await Task.Delay(50);
        }
    }

    private static string CopyRecipe(string name, string target)
    {
        var source = TestPaths.Recipe(name);
        foreach (var dir in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(dir.Replace(source, target, StringComparison.Ordinal));
        }

        Directory.CreateDirectory(target);
        foreach (var f in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(f, f.Replace(source, target, StringComparison.Ordinal));
        }

        return target;
    }
}
