using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Sluice.Connectors.Smtp;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.Recipes.Generators;
using Sluice.Jobs;
using Sluice.Recipes.Reminders.Jobs;
using Sluice.Recipes.Reminders;
using Sluice.Serving;
using Sluice.Serving.Auth;
using Sluice.Recipes.TestServers;

namespace Sluice.Recipes.Demo;

/// <summary>
/// The repeat-reminder part of <c>sluice demo</c>: runs the recipe (its HTTP streams <c>salesforce</c> and
/// <c>mongo</c> on a port of its own), and plays days of a law firm's life on a simulated calendar, one day per round:
/// the day's closures and likely-to-repeat verdicts are pushed over HTTP with each client's token, then the rule runs as
/// of that day (<c>--now</c>), and every reminder mail is shown as it goes out. Mail goes to the SMTP server the
/// <c>SMTP_*</c> variables name or, when none is configured, to an SMTP catcher the demo runs in-process, which keeps
/// each message as an <c>.eml</c> file.
/// </summary>
public sealed class RepeatReminderDemo(Recipe recipe, IEngineServices services, Action<string> say)
{
    /// <summary>What the printed <c>./sluice</c> lines add so that they work on this data folder from the working directory (<c> --data DIR</c>, or nothing for the default).</summary>
    public string DataFlag { get; init; } = "";

    public const int CasesPerDay = 4;

    public async Task RunAsync(TimeSpan interval, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        var definition = recipe.Job("send-reminders") ?? throw new SluiceException("repeat-reminder: the recipe has no job send-reminders.");
        var options = ((SendRemindersJobFactory)definition.Factory).Options;
        var mailFolder = Path.Combine(services.Data.Root, recipe.Name, "mail");
        SmtpCatcher? catcher = null;
        SmtpOptions smtp;
        if (Environment.GetEnvironmentVariable("SMTP_HOST") is { Length: > 0 })
        {
            smtp = options.Smtp.WithEnvironment();
        }
        else
        {
            catcher = new SmtpCatcher(mailFolder);
            smtp = options.Smtp.WithEnvironment().At(SmtpCatcher.Host, catcher.Port);
        }

        try
        {
            await RunWithAsync(definition, options, smtp, catcher is null ? $"the SMTP server {smtp.Describe()} (SMTP_HOST)" : $"the demo's own SMTP catcher on {smtp.Describe()}, each mail saved in {mailFolder}", interval, ct).ConfigureAwait(false);
        }
        finally
        {
            if (catcher is not null) { await catcher.DisposeAsync().ConfigureAwait(false); }
        }
    }

    private async Task RunWithAsync(JobDefinition definition, SendRemindersOptions options, SmtpOptions smtp, string mailTo, TimeSpan interval, CancellationToken ct)
    {
        // The demo plays the calendar itself (each round runs the rule as of its simulated day, with the demo's mail
        // server), so the recipe's own five-minute schedule, which would use the configured SMTP server, stays off.
        var unscheduled = new Recipe
        {
            Name = recipe.Name, Folder = recipe.Folder, Description = recipe.Description, Pipelines = recipe.Pipelines,
            Jobs = recipe.Jobs.Select(j => j with { Schedule = null }).ToList(),
        };
        var host = new RecipeHost(unscheduled, services) { Http = new HttpServerOptions("127.0.0.1", 0) };
        await using (host.ConfigureAwait(false))
        {
            // The traffic stops when the recipe fails; awaiting the run then reports why.
            using var traffic = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var running = host.RunAsync(ct).StopOnFailure(traffic);
            ct = traffic.Token;
            Uri address;
            try
            {
                address = await host.HttpStarted.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (SluiceException e)
            {
                say($"repeat-reminder not started: {e.Message}");
                return;
            }

            var tokens = new TokenStore(services.Metadata, services.Time);
            var writers = new Dictionary<string, string>(StringComparer.Ordinal);
            string Writer(string client) => writers.TryGetValue(client, out var t) ? t : writers[client] = tokens.Create(client, TokenRole.Writer, "demo").Token;
            var job = new DemoJob(definition.Factory, smtp, say);
            var runner = new JobRunner(services);
            var reminders = definition with { Factory = job };
            var day = services.Time.GetUtcNow().UtcDateTime.Date.AddHours(18);
            var url = address.ToString().TrimEnd('/');
            var sample = $$"""{"source": "Mongo", "_id": "hello-1", "type": "service_closure", "event_timestamp": "{{day.AddDays(-40):yyyy-MM-dd'T'HH:mm:ss'Z'}}", "case_id": "CASE-HELLO", "client_id": "CLIENT-0000", "attorney_email": "you@example.test"}""";
            say($"""
                repeat-reminder: streams salesforce and mongo on {url}; one simulated day every {interval.TotalSeconds:0.#} s from {day:yyyy-MM-dd}, {CasesPerDay} cases closed per day; mail goes to {mailTo}
                  curl -s -X POST -H "Authorization: Bearer {Writer("CLIENT-0000")}" -H "Content-Type: application/json" {url}/v1/streams/mongo/events -d '{sample}'
                  ./sluice query{DataFlag} "SELECT case_id, occurrence, due_at FROM reminders.vw_reminder_ready ORDER BY due_at LIMIT 10"
                  ./sluice query{DataFlag} "SELECT status, count(*) FROM reminders.attorney_reminder GROUP BY ALL"
                  ./sluice job run{DataFlag} repeat-reminder/send-reminders --now {day.AddDays(60):yyyy-MM-dd'T'HH:mm:ss'Z'}
                """);

            using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
            var round = 0;
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    // The first round also brings a month of history, so that reminders fall due from the start.
                    var generator = new AttorneyEventsGenerator(new AttorneyEventsGeneratorOptions
                    {
                        Cases = round == 0 ? 30 : CasesPerDay, Anchor = day, Delay = options.Rule.Delay, DueShare = round == 0 ? 0.3 : 0, Clients = 3, Attorneys = 5,
                        CasePrefix = string.Create(CultureInfo.InvariantCulture, $"CASE-{day:MMdd}"), FirstId = (round + 1) * 1_000_000L, DuplicateShare = 0.05, BadShare = 0.02,
                        Seed = round,
                    });
                    var events = generator.Events().ToList();
                    var (accepted, duplicates, rejected) = await PushAsync(http, events, Writer, ct).ConfigureAwait(false);
                    say($"day     {day:yyyy-MM-dd}: pushed {events.Count} events ({accepted - duplicates} new, {duplicates} duplicates, {rejected} refused at ingest)");
                    await Task.Delay(TimeSpan.FromMilliseconds(600), ct).ConfigureAwait(false);
                    var outcome = await runner.RunAsync(reminders, new JobRequest(new DateTimeOffset(day, TimeSpan.Zero), Trigger: "demo"), ct).ConfigureAwait(false);
                    say($"job     repeat-reminder/send-reminders: {outcome.Message}");
                    day = day.AddDays(1);
                    round++;
                    await Task.Delay(interval, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Demo stopping.
            }
            catch (Exception e) when (e is SluiceException or HttpRequestException)
            {
                say($"repeat-reminder: {e.Message}");
            }

            await running.ConfigureAwait(false);
            say($"repeat-reminder stopped after {round} simulated day(s), {job.Mails} mail(s) sent");
        }
    }

    private static async Task<(int Accepted, int Duplicates, int Rejected)> PushAsync(HttpClient http, List<GeneratedEvent> events, Func<string, string> writer, CancellationToken ct)
    {
        int accepted = 0, duplicates = 0, rejected = 0;
        foreach (var group in events.GroupBy(e => (e.Stream, e.Client)))
        {
            using var body = new MemoryStream();
            foreach (var e in group)
            {
                body.Write(e.Json);
                body.WriteByte((byte)'\n');
            }

            using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/streams/{group.Key.Stream}/events") { Content = new ByteArrayContent(body.ToArray()) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", writer(group.Key.Client));
            using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new SluiceException($"push to {group.Key.Stream} answered {(int)response.StatusCode}: {text}");
            }

            using var doc = JsonDocument.Parse(text);
            accepted += doc.RootElement.GetProperty("accepted").GetInt32();
            duplicates += doc.RootElement.GetProperty("duplicates").GetInt32();
            rejected += doc.RootElement.GetProperty("rejected").GetArrayLength();
        }

        return (accepted, duplicates, rejected);
    }

    /// <summary>The recipe's job, sending to the demo's SMTP server and narrating each mail.</summary>
    private sealed class DemoJob(IJobFactory inner, SmtpOptions smtp, Action<string> say) : IJobFactory
    {
        private int _mails;

        public int Mails => _mails;

        public IJob Create(IEngineServices services)
        {
            var options = ((SendRemindersJobFactory)inner).Options;
            var job = new SendRemindersJob(services, "repeat-reminder", options) { SmtpOverride = smtp };
            job.Delivered += (to, subject) =>
            {
                Interlocked.Increment(ref _mails);
                say($"mail    to {to}: {subject}");
            };
            return job;
        }
    }
}
