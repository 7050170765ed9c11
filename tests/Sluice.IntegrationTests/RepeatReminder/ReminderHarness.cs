using Sluice.Recipes;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using MimeKit;
using Sluice.Connectors.Smtp;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;
using Sluice.Recipes.Reminders.Jobs;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>
/// A repeat-reminder recipe (a copy of the shipped one, optionally edited) on a fresh data folder with a fake clock,
/// events landed through the recipe's own mappings, the job run as of chosen instants, and the mails it sent read back
/// from the SMTP server's mail folder. Every test's cases and addresses carry a tag of their own, because the SMTP
/// catcher is shared with other tests.
/// </summary>
internal sealed class ReminderHarness : IDisposable
{
    public static readonly DateTimeOffset T0 = new(2025, 7, 1, 9, 0, 0, TimeSpan.Zero);

    private readonly TempFolder _recipeCopy = new("sluice-reminder-recipe");
    private int _landed;

    public ReminderHarness(Func<string, string>? editRecipe = null, Func<string, string>? editStore = null, bool systemClock = false)
    {
        Clock = new FakeTimeProvider(T0.AddDays(-10));
        Engine = new Engine(systemClock ? TimeProvider.System : Clock);
        Tag = Guid.NewGuid().ToString("N")[..8];
        RecipeFolder = CopyRecipe(_recipeCopy.Path, editRecipe, editStore);
        Recipe = new RecipeLoader(RecipeComponents.Create()).Load(RecipeFolder);
        Options = ((SendRemindersJobFactory)Recipe.Job("send-reminders")!.Factory).Options;
    }

    public FakeTimeProvider Clock { get; }

    public Engine Engine { get; }

    public IEngineServices Services => Engine.Services;

    public string Tag { get; }

    public string RecipeFolder { get; }

    public Recipe Recipe { get; }

    public SendRemindersOptions Options { get; }

    public static SmtpOptions CatcherSmtp => new() { Host = ServerSettings.SmtpHost, Port = ServerSettings.SmtpPort, Tls = SmtpTls.None, From = "Sluice reminders <reminders@sluice.test>", ConnectAttempts = 1 };

    /// <summary>Copies the shipped recipe into <paramref name="folder"/>, editing recipe.yaml and store.yaml.</summary>
    public static string CopyRecipe(string folder, Func<string, string>? editRecipe = null, Func<string, string>? editStore = null)
    {
        var source = TestPaths.Recipe("repeat-reminder");
        var target = Path.Combine(folder, "repeat-reminder");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }

        if (editRecipe is not null) { File.WriteAllText(Path.Combine(target, "recipe.yaml"), editRecipe(File.ReadAllText(Path.Combine(target, "recipe.yaml")))); }
        if (editStore is not null) { File.WriteAllText(Path.Combine(target, "store.yaml"), editStore(File.ReadAllText(Path.Combine(target, "store.yaml")))); }
        return target;
    }

    public string Case(string name) => $"CASE-{Tag}-{name}";

    public string Client(string name = "1") => $"CLIENT-{Tag}-{name}";

    public string Attorney(string name) => $"{name}-{Tag}@example.test";

    /// <summary>A Salesforce-shaped event (the seed's layout; key case as in the seed).</summary>
    public string Salesforce(string caseName, DateTimeOffset at, string status = "Likely to Repeat", double score = 0.82, string eventType = "attorney actions", string? id = null, string attorney = "ann") =>
        $$"""{"source": "salesforce", "salesforce_object_id": "{{id ?? "SF-" + Guid.NewGuid().ToString("N")[..10]}}", "event_type": "{{eventType}}", "timestamp": "{{Iso(at)}}", "case_id": "{{Case(caseName)}}", "client_id": "{{Client()}}", "attorney_email": "{{Attorney(attorney)}}", "attributes": {"status": "{{status}}", "confidence_score": {{score.ToString(CultureInfo.InvariantCulture)}}, "case_type": "Immigration", "Case_last_action": "call"} }""";

    /// <summary>A Mongo-shaped event.</summary>
    public string Mongo(string caseName, DateTimeOffset at, string type = "service_closure", string? id = null, string attorney = "ann") =>
        $$"""{"source": "Mongo", "_id": "{{id ?? "M-" + Guid.NewGuid().ToString("N")[..10]}}", "type": "{{type}}", "event_timestamp": "{{Iso(at)}}", "case_id": "{{Case(caseName)}}", "client_id": "{{Client()}}", "attorney_email": "{{Attorney(attorney)}}", "status": "closed", "confidence_score": 0.5, "case_type": "Immigration", "case_last_action": "closed the file"}""";

    /// <summary>Lands events through a mapping of the recipe, as a source would (one commit).</summary>
    public async Task<NormalisedBatch> LandAsync(string mapping, params string[] events)
    {
        var errors = new ConfigErrors();
        var parsed = RecordMapping.Load(Path.Combine(RecipeFolder, "mappings", mapping + ".yaml"), AttorneyEventModel.Schema, errors);
        errors.ThrowIfAny();
        using var protector = ReminderKeys.Load(Options.Store, Services.Data);
        var normaliser = new EventNormaliser(parsed!, protector, Options.Store.ClientId);
        var batch = normaliser.Normalise(events.Select(e => new RawEvent(Encoding.UTF8.GetBytes(e), Clock.GetUtcNow().UtcDateTime, $"test-{Interlocked.Increment(ref _landed)}")).ToList());
        var warehouse = ReminderWarehouses.Create(Services, Options.Store, Recipe.Name);
        await using (warehouse)
        {
            await warehouse.InitialiseAsync(CancellationToken.None);
            await warehouse.AppendAsync(batch, $"test:{Recipe.Name}/{mapping}", $"test:{mapping}", _landed.ToString(CultureInfo.InvariantCulture), null, CancellationToken.None);
        }

        return batch;
    }

    public SendRemindersJob Job(SmtpOptions? smtp = null) => new(Services, Recipe.Name, Options) { SmtpOverride = smtp ?? CatcherSmtp };

    /// <summary>Runs the job as of <paramref name="now"/> (the fake clock is moved there first, as a scheduler would).</summary>
    public Task<Core.Recipes.JobOutcome> EvaluateAsync(DateTimeOffset now, SmtpOptions? smtp = null)
    {
        if (now > Clock.GetUtcNow() && Services.Time == Clock) { Clock.SetUtcNow(now); }
        return Job(smtp).RunAsync(new Core.Recipes.JobRequest(now), CancellationToken.None);
    }

    /// <summary>Mails the shared catcher received for this test's addresses.</summary>
    public IReadOnlyList<MimeMessage> Mails(string? attorney = null) => MailFolder.To(ServerSettings.SmtpMailDir, attorney is null ? $"-{Tag}@example.test" : Attorney(attorney));

    public ReminderOutbox Outbox() => new(Services.Metadata, Services.DeadLetters, Services.Time, Recipe.Name, Options.Rule.Name);

    public static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        Engine.Dispose();
        _recipeCopy.Dispose();
    }
}

/// <summary>Reads <c>.eml</c> files of an SMTP catcher's folder (parsed once each and remembered, as the folder only grows).</summary>
internal static class MailFolder
{
    private static readonly Dictionary<string, (string Rcpt, MimeMessage Message)> Seen = new(StringComparer.Ordinal);
    private static readonly Lock Gate = new();

    public static IReadOnlyList<MimeMessage> To(string folder, string recipientPart)
    {
        lock (Gate)
        {
            if (!Directory.Exists(folder)) { return []; }
            var found = new List<(string Name, MimeMessage Message)>();
            foreach (var file in Directory.EnumerateFiles(folder, "*.eml"))
            {
                if (!Seen.TryGetValue(file, out var mail))
                {
                    var message = MimeMessage.Load(file);
                    mail = (message.Headers["X-Sluice-Rcpt-To"] ?? "", message);
                    Seen[file] = mail;
                }

                if (mail.Rcpt.Contains(recipientPart, StringComparison.OrdinalIgnoreCase)) { found.Add((file, mail.Message)); }
            }

            return found.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => f.Message).ToList();
        }
    }
}
