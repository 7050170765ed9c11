using Sluice.Alerts.Conditions;
using Sluice.Alerts.Notify;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Text;

namespace Sluice.Alerts;

/// <summary>
/// A recipe's <c>alerts:</c> section: how often the rules are checked, where notices go (<c>webhook</c>, <c>email</c>),
/// and the rules by name. Validated with the rest of the recipe: an unknown kind, a bad duration, a pipeline, job or
/// table the recipe does not have, a missing webhook URL are each reported as <c>file:line: key: what is wrong</c>.
/// </summary>
public sealed class AlertsOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly AlertsOptions Default = new();

    /// <summary>Checks a notice is tried at before it is given up (with the default 30 s, about ten minutes of an unreachable receiver).</summary>
    public const int MaxDeliveryRounds = 20;

    public static readonly IReadOnlyList<string> Kinds = ["freshness", "lag", "slot_lag", "slot_wal", "dead_letters", "job_failed", "job_late"];

    public TimeSpan CheckEvery { get; init; } = TimeSpan.FromSeconds(30);

    public WebhookOptions? Webhook { get; init; }

    public EmailOptions? Email { get; init; }

    public IReadOnlyList<AlertRule> Rules { get; init; } = [];

    /// <param name="tables">Lake tables the recipe's components say they write; empty when none can say (then any name is taken).</param>
    public static AlertsOptions? Parse(ConfigMap? map, RecipeContext recipe, IReadOnlyList<PipelineDefinition> pipelines, IReadOnlyList<JobDefinition> jobs, IReadOnlyCollection<string> tables)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        if (map is null) { return null; }
        var checkEvery = map.Duration("check_every", Default.CheckEvery, doc: "How often the running host checks the rules (100ms to 1h).");
        if (checkEvery < TimeSpan.FromMilliseconds(100) || checkEvery > TimeSpan.FromHours(1))
        {
            map.Error("check_every", "must be between 100ms and 1h");
        }

        var webhook = WebhookOptions.Parse(map.Map("webhook", doc: "Notices POSTed as JSON to a URL."));
        var email = EmailOptions.Parse(map.Map("email", doc: "Notices sent as mail through an SMTP server."));
        var rules = new List<AlertRule>();
        var scope = new RuleScope(recipe.Name, pipelines, jobs, tables);
        foreach (var (name, rule) in map.NamedMaps("rules", doc: "The alerts by name, each a `kind` with its keys (required)."))
        {
            if (Parse(name, rule, scope) is { } parsed) { rules.Add(parsed); }
        }

        if (!map.Has("rules")) { map.Error("rules", "missing: the alerts to check, by name (see docs/OBSERVABILITY.md, \"Alerts\")"); }
        map.Done();
        return new AlertsOptions { CheckEvery = checkEvery, Webhook = webhook, Email = email, Rules = rules };
    }

    private static AlertRule? Parse(string name, ConfigMap rule, RuleScope scope)
    {
        var kind = rule.RequiredString("kind", doc: $"What is checked: {string.Join(", ", Kinds)}. Each kind reads the keys below that name it.");
        var severity = rule.Enum("severity", AlertSeverity.Warning, doc: "How the notice is marked.");
        if (rule.Describing)
        {
            // The reference shows every kind's keys, which a recipe gives one kind at a time.
            foreach (var each in Kinds) { Condition(each, rule, scope); }
            return null;
        }

        var condition = Condition(kind, rule, scope);
        if (condition is null && kind.Length > 0)
        {
            var meant = Suggestions.Closest(kind, Kinds) is { } m ? $"; did you mean '{m}'?" : "";
            rule.Error("kind", $"unknown alert kind '{kind}'{meant} (known: {string.Join(", ", Kinds)})");
        }

        // An unknown kind says so once; its other keys would only add noise.
        if (condition is not null) { rule.Done(); }
        return condition is null ? null : new AlertRule(scope.Recipe, name, severity, condition);
    }

    private static AlertCondition? Condition(string kind, ConfigMap rule, RuleScope scope) => kind switch
        {
            "freshness" => new FreshnessCondition(scope.Table(rule), Required(rule, "within")),
            "lag" => Lag(rule, scope),
            "slot_lag" => SlotLag(rule, scope),
            "slot_wal" => new SlotWalCondition(scope.CdcPipeline(rule), rule.Size("min_safe_wal", 1L << 30, doc: "slot_wal: fires when the slot's `safe_wal_size` (WAL it may still hold before the server invalidates it) falls below this.")),
            "dead_letters" => new DeadLettersCondition(scope.Recipe, rule.String("source", doc: "dead_letters: only this dead-letter source (default: all of the recipe's)."), rule.Int("more_than", 0, 0, doc: "dead_letters: fires when more dead letters than this arrived within `within`."), Required(rule, "within")),
            "job_failed" => new JobFailedCondition(scope.Job(rule, scheduled: false).Name),
            "job_late" => JobLate(rule, scope),
            _ => null,
        };

    private static LagCondition Lag(ConfigMap rule, RuleScope scope)
    {
        var pipeline = scope.Pipeline(rule);
        rule.Declare("max_lag", "duration", null, "lag, slot_lag: fires when the oldest data not yet committed is older than this.");
        rule.Declare("max_backlog", "size or count", null, "lag: fires when more than this waits: files (a count) for a files source, bytes landed (64MB) for an http source.");
        TimeSpan? maxLag = rule.Has("max_lag") ? rule.Duration("max_lag", TimeSpan.Zero) : null;
        long? maxBacklog = rule.Has("max_backlog") ? rule.Size("max_backlog", 0) : null;
        if (maxLag is null && maxBacklog is null) { rule.Error("kind", "a lag alert needs max_lag (a duration) or max_backlog (files waiting, or bytes landed: 1000, 64MB), or both"); }
        return new LagCondition(pipeline, maxLag, maxBacklog);
    }

    private static SlotLagCondition SlotLag(ConfigMap rule, RuleScope scope)
    {
        var pipeline = scope.CdcPipeline(rule);
        rule.Declare("max_bytes", "size (512KB, 16MB, 2GB)", null, "slot_lag: fires when the slot holds back more WAL than this.");
        rule.Declare("max_lag", "duration", null, "lag, slot_lag: fires when the oldest data not yet committed is older than this.");
        long? maxBytes = rule.Has("max_bytes") ? rule.Size("max_bytes", 0) : null;
        TimeSpan? maxLag = rule.Has("max_lag") ? rule.Duration("max_lag", TimeSpan.Zero) : null;
        if (maxBytes is null && maxLag is null) { rule.Error("kind", "a slot_lag alert needs max_bytes (a size: 512MB) or max_lag (a duration), or both"); }
        return new SlotLagCondition(pipeline, maxBytes, maxLag);
    }

    private static JobLateCondition JobLate(ConfigMap rule, RuleScope scope)
    {
        var job = scope.Job(rule, scheduled: true);
        return new JobLateCondition(job.Name, job.Schedule ?? "0 0 * * *", rule.Duration("grace", TimeSpan.FromMinutes(10), doc: "job_late: how long after its scheduled time a job may still finish before it is late."));
    }

    private static TimeSpan Required(ConfigMap rule, string key)
    {
        rule.Declare(key, "duration", null, "freshness: fires when the table got no new data for this long; dead_letters: the window counted.", required: true);
        if (!rule.Has(key)) { rule.Error(key, "missing: a duration such as 15m, 2h or 1d"); }
        var value = rule.Duration(key, TimeSpan.FromHours(1));
        if (value <= TimeSpan.Zero) { rule.Error(key, "must be more than 0"); }
        return value;
    }

    /// <summary>What a rule may name: the recipe's pipelines, jobs and lake tables, with "did you mean" when it names something else.</summary>
    private sealed record RuleScope(string Recipe, IReadOnlyList<PipelineDefinition> Pipelines, IReadOnlyList<JobDefinition> Jobs, IReadOnlyCollection<string> Tables)
    {
        public string Pipeline(ConfigMap rule) => $"{Recipe}/{PipelineDefinition(rule)?.Name ?? ""}";

        public string CdcPipeline(ConfigMap rule)
        {
            var p = PipelineDefinition(rule);
            if (p is not null && p.SourceType != "postgres_cdc")
            {
                rule.Error("pipeline", $"pipeline '{p.Name}' reads '{p.SourceType}', which has no replication slot; slot alerts need a postgres_cdc pipeline");
            }

            return $"{Recipe}/{p?.Name ?? ""}";
        }

        public (string Name, string? Schedule) Job(ConfigMap rule, bool scheduled)
        {
            var name = rule.RequiredString("job", doc: "job_failed, job_late: the recipe's job watched.");
            var job = Jobs.FirstOrDefault(j => j.Name == name);
            if (job is null)
            {
                if (name.Length > 0) { rule.Error("job", $"no job named '{name}' in this recipe{Meant(name, Jobs.Select(j => j.Name))}"); }
                return ($"{Recipe}/{name}", null);
            }

            if (scheduled && job.Schedule is null)
            {
                rule.Error("job", $"job '{name}' has no schedule, so it is never late; job_late needs a scheduled job (job_failed works for any)");
            }

            return (job.FullName, job.Schedule);
        }

        public string Table(ConfigMap rule)
        {
            var table = rule.RequiredString("table", doc: "freshness: the lake table watched, `zone.table`.");
            if (table.Length == 0) { return table; }
            if (table.Split('.') is not [{ Length: > 0 }, { Length: > 0 }])
            {
                rule.Error("table", $"'{table}' is not a lake table name; write zone.table, for example raw.events");
            }
            else if (Tables.Count > 0 && !Tables.Contains(table))
            {
                rule.Error("table", $"no lake table '{table}' is written by this recipe{Meant(table, Tables)}");
            }

            return table;
        }

        private PipelineDefinition? PipelineDefinition(ConfigMap rule)
        {
            var name = rule.RequiredString("pipeline", doc: "lag, slot_lag, slot_wal: the recipe's pipeline watched (a postgres_cdc one for the slot kinds).");
            var p = Pipelines.FirstOrDefault(x => x.Name == name);
            if (p is null && name.Length > 0) { rule.Error("pipeline", $"no pipeline named '{name}' in this recipe{Meant(name, Pipelines.Select(x => x.Name))}"); }
            return p;
        }

        private static string Meant(string name, IEnumerable<string> known)
        {
            var list = known.Order(StringComparer.Ordinal).ToList();
            var meant = Suggestions.Closest(name, list) is { } m ? $"; did you mean '{m}'?" : "";
            return $"{meant} (known: {(list.Count == 0 ? "none" : string.Join(", ", list))})";
        }
    }
}
