using Sluice.Recipes;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Connectors.Smtp;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Recipes.Generators;
using Sluice.Recipes.Reminders.Jobs;
using Sluice.Lake;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;
using Sluice.Recipes.TestServers;
using Sluice.Hosting;

namespace Sluice.Bench;

public sealed record RemindersBenchmarkReport(
    string Machine, int Cases, long Events, long Rejected,
    double NormaliseSeconds, double ReferenceParseSeconds, double LandSeconds,
    long Due, double QuerySeconds, double ReferenceQuerySeconds, double IntentSeconds,
    double JobSeconds, long Sent, long Caught)
{
    public double EvaluationSeconds => QuerySeconds + IntentSeconds;

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"### bench reminders ({DateTime.UtcNow:yyyy-MM-dd})");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Machine}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Input: {Cases:N0} cases, {Events:N0} mixed Salesforce- and Mongo-shaped events ({Rejected:N0} refused by the mappings), {Due:N0} reminders due at the evaluation instant");
        sb.AppendLine();
        sb.AppendLine("| measure | Sluice | reference (same run) | ratio | target |");
        sb.AppendLine("|---|---|---|---|---|");
        if (NormaliseSeconds > 0)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| normalisation (map + cast + encrypt + hash, one thread) | {NormaliseSeconds:N2} s ({Events / NormaliseSeconds:N0} events/s) | JsonDocument parse only: {ReferenceParseSeconds:N2} s ({Events / ReferenceParseSeconds:N0} events/s) | {ReferenceParseSeconds / NormaliseSeconds:N2}x of the parse-only rate | |");
            sb.AppendLine(CultureInfo.InvariantCulture, $"| landing (Parquet + manifest commit, both tables) | {LandSeconds:N2} s ({Events / LandSeconds:N0} events/s) | | | |");
        }

        sb.AppendLine(CultureInfo.InvariantCulture, $"| rule query (one set-based DuckDB query over the lake) | {QuerySeconds:N2} s | same SQL, plain DuckDB over the same files: {ReferenceQuerySeconds:N2} s | {QuerySeconds / ReferenceQuerySeconds:N2}x | |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| recording {Due:N0} intents (one SQLite transaction) | {IntentSeconds:N2} s | | | |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| **evaluation** (query + intents) | **{EvaluationSeconds:N2} s** | | | **< 10 s** {(EvaluationSeconds < 10 ? "(met)" : "(MISSED)")} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| whole job run: evaluation, claims, {Sent:N0} mails to a local SMTP catcher, sent log | {JobSeconds:N2} s ({Sent / JobSeconds:N0} mails/s) | | | |");
        if (Caught != Sent) { sb.AppendLine(CultureInfo.InvariantCulture, $"WARNING: the catcher received {Caught:N0} messages for {Sent:N0} sent."); }
        return sb.ToString();
    }
}

/// <summary>
/// <c>sluice bench reminders</c>: generates a million cases with three million mixed events, normalises them through
/// the recipe's own mappings (timed apart from landing, and against a parse-only reference), lands them in the lake,
/// then evaluates the rule at an instant where about ten thousand reminders are due: the rule query (against the same
/// SQL run by plain DuckDB over the same files), recording the intents, and a whole job run that mails them to an
/// in-process SMTP catcher.
/// </summary>
public static class RemindersBenchmark
{
    private const int Chunk = 65_536;
    private static readonly string[] Streams = ["salesforce", "mongo"];
    private static readonly DateTimeOffset Anchor = new(2025, 9, 1, 0, 0, 0, TimeSpan.Zero);

    /// <param name="progress">A progress reporter per phase (title), or null for none.</param>
    public static async Task<RemindersBenchmarkReport> RunAsync(
        string root, int cases, TextWriter log, CancellationToken ct, bool reuse = false, Func<string, IProgress<JobProgress>>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        reuse &= Directory.Exists(Path.Combine(root, "sluice-data", "lake", "reminders", "attorney_events"));
        if (Directory.Exists(root) && !reuse) { Directory.Delete(root, true); }
        var recipe = new RecipeLoader(RecipeComponents.Create()).Load(Path.Combine(RecipeLoader.RecipesRoot, "repeat-reminder"));
        var options = ((SendRemindersJobFactory)recipe.Job("send-reminders")!.Factory).Options;
        var errors = new ConfigErrors();
        var mappings = Streams.ToDictionary(
            m => m, m => RecordMapping.Load(Path.Combine(recipe.Folder, "mappings", m + ".yaml"), AttorneyEventModel.Schema, errors)!, StringComparer.Ordinal);
        errors.ThrowIfAny();

        using var services = new EngineServices(new DataDirectory(Path.Combine(root, "sluice-data")), TimeProvider.System, NullLoggerFactory.Instance);
        using var protector = ReminderKeys.Load(options.Store, services.Data);
        var warehouse = new LakeReminderWarehouse(services, options.Store.Zone);
        await warehouse.InitialiseAsync(ct).ConfigureAwait(false);
        var normalisers = mappings.ToDictionary(m => m.Key, m => new EventNormaliser(m.Value, protector, options.Store.ClientId), StringComparer.Ordinal);
        // About 60% of due closures keep their reminder (likely, not withdrawn, no purchase): aim at 10,000 due.
        var generator = new AttorneyEventsGenerator(new AttorneyEventsGeneratorOptions
        {
            Cases = cases, Anchor = Anchor, DueShare = Math.Min(1, 10_000 / (cases * 0.6)), LikelyShare = 0.7, WithdrawnShare = 0.1,
            PurchaseShare = 0.05, DuplicateShare = 0.01, BadShare = 0.0005, Clients = 5_000, Attorneys = 2_000, Seed = 6,
        });

        if (reuse)
        {
            // Evaluation only, over the events an earlier run landed (for working on the rule's speed).
            foreach (var f in services.Lake.FileEntries($"{options.Store.Zone}.{ReminderTables.AttorneyReminder}")) { File.Delete(f.Path); }
            using var c = services.Metadata.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = $"DELETE FROM reminder_outbox; DELETE FROM lake_files WHERE table_name = '{options.Store.Zone}.{ReminderTables.AttorneyReminder}'";
            cmd.ExecuteNonQuery();
            generator = new AttorneyEventsGenerator(generator.Options with { Cases = 0 });
        }
        else
        {
            await log.WriteLineAsync($"generating, normalising and landing the events of {cases:N0} cases ...").ConfigureAwait(false);
            Warm(normalisers, generator);
        }

        var buffers = new Dictionary<string, List<RawEvent>>(StringComparer.Ordinal) { ["salesforce"] = [], ["mongo"] = [] };
        long events = 0, rejected = 0, position = 0;
        var normalise = new Stopwatch();
        var parse = new Stopwatch();
        var land = new Stopwatch();
        async Task FlushAsync(string stream)
        {
            var raw = buffers[stream];
            if (raw.Count == 0) { return; }
            parse.Start();
            ParseOnly(raw);
            parse.Stop();
            normalise.Start();
            var batch = normalisers[stream].Normalise(raw);
            normalise.Stop();
            land.Start();
            await warehouse.AppendAsync(batch, $"bench:{stream}", $"bench:{stream}", position.ToString(CultureInfo.InvariantCulture), null, ct).ConfigureAwait(false);
            land.Stop();
            events += raw.Count;
            rejected += batch.Rejected.Count;
            raw.Clear();
        }

        var received = Anchor.UtcDateTime.AddDays(-1);
        if (reuse) { events = services.Query.Query($"SELECT count(*) FROM {options.Store.Zone}.{ReminderTables.AttorneyEvents}").Rows[0][0] is long n ? n : 0; }
        var landing = reuse ? null : progress?.Invoke("generate, normalise, land");
        var casesDone = 0;
        foreach (var e in generator.Events(() =>
                 {
                     // Every 1,000 cases: a report per case would cost more than the case.
                     if (++casesDone % 1000 == 0 || casesDone == cases) { landing?.Report(new JobProgress(casesDone, cases, "cases")); }
                 }))
        {
            ct.ThrowIfCancellationRequested();
            var list = buffers[e.Stream];
            list.Add(new RawEvent(e.Json, received, (++position).ToString(CultureInfo.InvariantCulture)));
            if (list.Count >= Chunk) { await FlushAsync(e.Stream).ConfigureAwait(false); }
        }

        await FlushAsync("salesforce").ConfigureAwait(false);
        await FlushAsync("mongo").ConfigureAwait(false);
        normalise.Start(); normalise.Stop();

        await log.WriteLineAsync($"evaluating as of {Anchor:yyyy-MM-dd} ...").ConfigureAwait(false);
        var sw = Stopwatch.StartNew();
        var due = await warehouse.DueAsync(options.Rule, Anchor, ct).ConfigureAwait(false);
        var querySeconds = sw.Elapsed.TotalSeconds;
        var referenceSeconds = ReferenceQuery(services, options.Rule, options.Store.Zone, due.Count, root);
        var outbox = new ReminderOutbox(services.Metadata, services.DeadLetters, services.Time, recipe.Name, options.Rule.Name);
        sw.Restart();
        outbox.RecordIntents(due);
        var intentSeconds = sw.Elapsed.TotalSeconds;

        await log.WriteLineAsync($"job run: {due.Count:N0} reminders to a local SMTP catcher ...").ConfigureAwait(false);
        var catcher = new SmtpCatcher();
        await using (catcher.ConfigureAwait(false))
        {
            var job = new SendRemindersJob(services, recipe.Name, options)
            {
                SmtpOverride = new SmtpOptions { Host = SmtpCatcher.Host, Port = catcher.Port, Tls = SmtpTls.None, From = "bench@sluice.local", ConnectAttempts = 1 },
            };
            sw.Restart();
            var outcome = await job.RunAsync(new JobRequest(Anchor), ct).ConfigureAwait(false);
            var jobSeconds = sw.Elapsed.TotalSeconds;
            return new RemindersBenchmarkReport(
                MachineInfo.Describe(), cases, events, rejected, normalise.Elapsed.TotalSeconds, parse.Elapsed.TotalSeconds, land.Elapsed.TotalSeconds,
                due.Count, querySeconds, referenceSeconds, intentSeconds, jobSeconds, outcome.RowsOut, catcher.Count);
        }
    }

    /// <summary>The same work on a few cases first, so the measured run is of compiled code.</summary>
    private static void Warm(Dictionary<string, EventNormaliser> normalisers, AttorneyEventsGenerator generator)
    {
        var sample = new AttorneyEventsGenerator(generator.Options with { Cases = 2_000, Seed = 1 }).Events().ToList();
        foreach (var group in sample.GroupBy(e => e.Stream))
        {
            var raw = group.Select(e => new RawEvent(e.Json, DateTime.UtcNow, "warm")).ToList();
            normalisers[group.Key].Normalise(raw);
            ParseOnly(raw);
        }
    }

    /// <summary>The floor: parse each event with System.Text.Json and read its fields, no mapping, casting or protection.</summary>
    private static void ParseOnly(List<RawEvent> raw)
    {
        long sink = 0;
        foreach (var e in raw)
        {
            using var doc = JsonDocument.Parse(e.Json);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                sink += p.Value.ValueKind == JsonValueKind.Object ? p.Value.EnumerateObject().Count() : p.Value.GetRawText().Length;
            }
        }

        GC.KeepAlive(sink);
    }

    private static double ReferenceQuery(EngineServices services, ReminderRule rule, string zone, int expected, string root)
    {
        using var db = DuckDb.OpenMemory(Path.Combine(root, "reference-tmp"));
        var events = string.Join(", ", services.Lake.Files($"{zone}.{ReminderTables.AttorneyEvents}").Select(LakeQueryEngine.Literal));
        var sw = Stopwatch.StartNew();
        LakeQueryEngine.Exec(db, $"CREATE VIEW ev AS SELECT * FROM read_parquet([{events}])");
        LakeQueryEngine.Exec(db, "CREATE TABLE sent (reminder_key VARCHAR, status VARCHAR, recorded_at TIMESTAMPTZ)");
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM ({ReminderRuleSql.Ready(rule, SqlDialect.DuckDb, "ev", "sent", ReminderRuleSql.Instant(Anchor))})";
        var count = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        sw.Stop();
        if (count != expected)
        {
            throw new SluiceException($"bench: the reference query found {count} due reminders, Sluice {expected}.");
        }

        return sw.Elapsed.TotalSeconds;
    }
}
