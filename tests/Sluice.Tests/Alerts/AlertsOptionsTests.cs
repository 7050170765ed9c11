using Sluice.Alerts;
using Sluice.Alerts.Conditions;
using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Tests.Alerts;

/// <summary>The <c>alerts:</c> section is validated with the recipe: each problem with file, line, key and a useful reason.</summary>
public class AlertsOptionsTests
{
    private static readonly IReadOnlyList<PipelineDefinition> Pipelines =
    [
        new("ingest", "files", null!, []),
        new("cdc", "postgres_cdc", null!, []),
    ];

    private static readonly IReadOnlyList<JobDefinition> Jobs =
    [
        new("r", "daily-summary", "daily_summary", "0 1 * * *", null!),
        new("r", "backfill", "postgres_backfill", null, null!),
    ];

    [Fact]
    public void A_valid_section_gives_one_rule_per_name_with_its_condition()
    {
        var (options, errors) = Parse("""
            alerts:
              check_every: 10s
              webhook: {url: "http://127.0.0.1:9/hook", retries: 2, timeout: 2s}
              rules:
                stale: {kind: freshness, table: raw.events, within: 2h, severity: critical}
                behind: {kind: lag, pipeline: ingest, max_lag: 5m, max_backlog: 1000}
                slot: {kind: slot_lag, pipeline: cdc, max_bytes: 512MB}
                wal: {kind: slot_wal, pipeline: cdc, min_safe_wal: 1GB}
                letters: {kind: dead_letters, more_than: 10, within: 15m}
                failing: {kind: job_failed, job: backfill}
                late: {kind: job_late, job: daily-summary, grace: 30m}
            """);
        errors.ShouldBeEmpty();
        options!.CheckEvery.ShouldBe(TimeSpan.FromSeconds(10));
        options.Webhook!.Url.ShouldBe(new Uri("http://127.0.0.1:9/hook"));
        options.Webhook.Retries.ShouldBe(2);
        options.Rules.Select(r => r.Condition.Kind).ShouldBe(["freshness", "lag", "slot_lag", "slot_wal", "dead_letters", "job_failed", "job_late"]);
        options.Rules[0].Severity.ShouldBe(AlertSeverity.Critical);
        options.Rules[1].Severity.ShouldBe(AlertSeverity.Warning);
        options.Rules[1].Condition.Subject.ShouldBe("pipeline r/ingest");
        ((JobLateCondition)options.Rules[6].Condition).Grace.ShouldBe(TimeSpan.FromMinutes(30));
    }

    [Fact]
    public void Unknown_kinds_names_and_keys_are_reported_with_did_you_mean()
    {
        var (_, errors) = Parse("""
            alerts:
              rules:
                a: {kind: freshnes, table: raw.events, within: 1h}
                b: {kind: lag, pipeline: ingset, max_lag: 5m}
                c: {kind: job_failed, job: daily-sumary}
                d: {kind: freshness, table: raw.event, within: 1h}
                e: {kind: dead_letters, within: 1h, mor_than: 3}
            """);
        errors.ShouldContain("recipe.yaml:3: alerts.rules.a.kind: unknown alert kind 'freshnes'; did you mean 'freshness'? (known: freshness, lag, slot_lag, slot_wal, dead_letters, job_failed, job_late)");
        errors.ShouldContain("recipe.yaml:4: alerts.rules.b.pipeline: no pipeline named 'ingset' in this recipe; did you mean 'ingest'? (known: cdc, ingest)");
        errors.ShouldContain("recipe.yaml:5: alerts.rules.c.job: no job named 'daily-sumary' in this recipe; did you mean 'daily-summary'? (known: backfill, daily-summary)");
        errors.ShouldContain("recipe.yaml:6: alerts.rules.d.table: no lake table 'raw.event' is written by this recipe; did you mean 'raw.events'? (known: raw.events, reports.daily)");
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:7: alerts.rules.e.mor_than: unknown key; did you mean 'more_than'?", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_durations_missing_options_and_misfit_pipelines_are_refused()
    {
        var (_, errors) = Parse("""
            alerts:
              check_every: soon
              webhook: {timeout: 5s}
              rules:
                a: {kind: freshness, table: raw.events, within: 2 hours}
                b: {kind: freshness, table: raw.events}
                c: {kind: lag, pipeline: ingest}
                d: {kind: slot_wal, pipeline: ingest}
                e: {kind: job_late, job: backfill}
                f: {kind: freshness, table: events, within: 1h}
            """);
        errors.ShouldContain("recipe.yaml:2: alerts.check_every: expected a duration such as 500ms, 2s, 5m, 1h, 30d or P30D, got 'soon'");
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:3: alerts.webhook.url: missing: the address notices are POSTed to", StringComparison.Ordinal));
        errors.ShouldContain("recipe.yaml:5: alerts.rules.a.within: expected a duration such as 500ms, 2s, 5m, 1h, 30d or P30D, got '2 hours'");
        errors.ShouldContain("recipe.yaml:6: alerts.rules.b.within: missing: a duration such as 15m, 2h or 1d");
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:7: alerts.rules.c.kind: a lag alert needs max_lag", StringComparison.Ordinal));
        errors.ShouldContain("recipe.yaml:8: alerts.rules.d.pipeline: pipeline 'ingest' reads 'files', which has no replication slot; slot alerts need a postgres_cdc pipeline");
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:9: alerts.rules.e.job: job 'backfill' has no schedule, so it is never late", StringComparison.Ordinal));
        errors.ShouldContain("recipe.yaml:10: alerts.rules.f.table: 'events' is not a lake table name; write zone.table, for example raw.events");
    }

    [Fact]
    public void Email_needs_recipients_and_a_sender_unless_SMTP_FROM_gives_one()
    {
        var (_, errors) = Parse("""
            alerts:
              email: {to: [not-an-address], smtp: {host: 127.0.0.1}}
              rules:
                a: {kind: job_failed, job: backfill}
            """);
        errors.ShouldContain("recipe.yaml:2: alerts.email.to: 'not-an-address' is not a mail address");
        errors.ShouldContain("recipe.yaml:2: alerts.email.smtp: smtp: no sender address; set smtp.from in the recipe or SMTP_FROM.");
    }

    private static (AlertsOptions? Options, List<string> Errors) Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse(yaml, "recipe.yaml", errors)!;
        var options = AlertsOptions.Parse(map.Map("alerts"), new RecipeContext("r", ".", errors), Pipelines, Jobs, ["raw.events", "reports.daily"]);
        return (options, errors.All.Select(e => e.ToString()).ToList());
    }
}
