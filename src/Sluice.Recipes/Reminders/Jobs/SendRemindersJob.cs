using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using MimeKit;
using Sluice.Connectors.Smtp;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;
using Sluice.Jobs;
using Sluice.Recipes.Reminders;

namespace Sluice.Recipes.Reminders.Jobs;

/// <summary>The <c>send_reminders</c> job type (<c>repeat-reminder/send-reminders</c>).</summary>
public sealed class SendRemindersJobType : IJobType
{
    public string Name => "send_reminders";

    public IJobFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(recipe);
        var jobName = options.KeyPath.StartsWith("jobs.", StringComparison.Ordinal) ? options.KeyPath[5..] : "reminders";
        return new SendRemindersJobFactory(recipe.Name, SendRemindersOptions.Parse(options, recipe, jobName));
    }
}

public sealed class SendRemindersJobFactory(string recipe, SendRemindersOptions options) : IJobFactory, IClusterJobFactory
{
    public SendRemindersOptions Options => options;

    /// <summary>
    /// In a cluster the outbox is in the shared metadata store; the rule reads the recipe's store, which every worker
    /// must share (the lake zone through the cluster's lake under <c>SLUICE_CLUSTER_FOLDER</c>, PostgreSQL by its
    /// server), and the addresses it decrypts need one key on every worker.
    /// </summary>
    public string? ClusterProblem(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        if (!options.Store.UsesPostgres && string.IsNullOrEmpty(variable(Core.Metadata.SharedMetadata.FolderVariable)))
        {
            return $"it reads the lake zone '{options.Store.Zone}', whose files must be in a folder every worker sees: set {Core.Metadata.SharedMetadata.FolderVariable} (or give its store a postgres: schema)";
        }

        return string.IsNullOrEmpty(variable(options.Store.KeyEnv))
            ? $"each worker would decrypt addresses with a key of its own data folder ({options.Store.KeyFile}); set {options.Store.KeyEnv} to the same key for every worker"
            : null;
    }

    public IJob Create(IEngineServices services) => new SendRemindersJob(services, recipe, options);
}

/// <summary>
/// Evaluates the rule as of the run's instant and sends what is due, once: settles what a dead run left in flight,
/// brings the sent log up to date, runs the rule as one query, records every due reminder's intent, withdraws intents
/// that are no longer due, claims the rest for this run, sends each (recording "sending" before the message is
/// transmitted and "sent" after the server's 250), and appends the outcomes to <c>attorney_reminder</c>.
/// </summary>
public sealed class SendRemindersJob(IEngineServices services, string recipe, SendRemindersOptions options) : IJob, IDeadLetterReplayer
{
    private readonly ILogger _log = services.Logging.CreateLogger("Sluice.Recipes.Reminders");

    /// <summary>Sends to this server instead of the configured one (the demo's own catcher, tests' throw-away servers).</summary>
    public SmtpOptions? SmtpOverride { get; init; }

    /// <summary>Raised for each mail the SMTP server accepted: recipient and subject (the demo narrates them).</summary>
    public event Action<string, string>? Delivered;

    private ReminderOutbox Outbox() => new(services.Metadata, services.DeadLetters, services.Time, recipe, options.Rule.Name);

    public async Task<JobOutcome> RunAsync(JobRequest request, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var smtp = SmtpOverride ?? options.Smtp.WithEnvironment();
        var warehouse = ReminderWarehouses.Create(services, options.Store, recipe);
        await using var _ = warehouse.ConfigureAwait(false);
        await warehouse.InitialiseAsync(ct).ConfigureAwait(false);
        using var protector = ReminderKeys.Load(options.Store, services.Data);
        var outbox = Outbox();

        // On a cluster each step that judges other runs' claims holds the run's lease (JobFence, nothing outside one):
        // a runner whose lease was taken over settles, withdraws and claims nothing, so it cannot take a reminder from
        // the run that replaced it, nor call that run's send in progress unconfirmed.
        int recovered;
        using (JobFence.Hold())
        {
            recovered = outbox.RecoverAbandoned();
        }

        if (recovered > 0) { ReminderLog.Unconfirmed(_log, recovered, outbox.LetterSource); }
        await warehouse.PublishAsync(outbox, ct).ConfigureAwait(false);

        var due = await warehouse.DueAsync(options.Rule, request.AsOf, ct).ConfigureAwait(false);
        var run = Guid.NewGuid().ToString("N");
        var byKey = due.ToDictionary(d => d.Key, StringComparer.Ordinal);
        int withdrawn;
        List<DueReminder> claimed;
        using (JobFence.Hold())
        {
            outbox.RecordIntents(due);
            withdrawn = outbox.WithdrawStale(due.Select(d => d.Key).ToHashSet(StringComparer.Ordinal), request.AsOf);
            claimed = outbox.Claim(due.OrderBy(d => d.DueAt).Select(d => d.Key), run, options.ClaimLease).Select(k => byKey[k]).ToList();
        }

        var tally = new Tally();
        string? unavailable = null;
        try
        {
            unavailable = await DeliverAsync(claimed, outbox, run, smtp, protector, tally, ct).ConfigureAwait(false);
        }
        finally
        {
            await warehouse.PublishAsync(outbox, CancellationToken.None).ConfigureAwait(false);
        }

        var stopped = recovered > 0 ? $"; {recovered} left in flight by a stopped run marked unconfirmed" : "";
        var message = string.Create(CultureInfo.InvariantCulture,
            $"{due.Count} due as of {request.AsOf.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}: {tally.Sent} sent, {tally.Failed} failed, {tally.Unconfirmed} unconfirmed, {tally.Waiting} waiting for a retry, {due.Count - claimed.Count} held by another run or settled; {withdrawn} withdrawn{stopped}");
        if (unavailable is not null)
        {
            throw new SluiceException($"{message}. {unavailable}; the waiting reminders are sent by the next run.");
        }

        return new JobOutcome(due.Count, tally.Sent, message);
    }

    private async Task<string?> DeliverAsync(List<DueReminder> claimed, ReminderOutbox outbox, string run, SmtpOptions smtp, FieldProtector protector, Tally tally, CancellationToken ct)
    {
        if (claimed.Count == 0)
        {
            return null;
        }

        var sender = new SmtpSender(smtp, services.Time);
        await using var _ = sender.ConfigureAwait(false);
        var next = 0;
        try
        {
            await sender.EnsureConnectedAsync(ct).ConfigureAwait(false);
            for (; next < claimed.Count; next++)
            {
                var reminder = claimed[next];
                var message = Compose(reminder, smtp, protector, out var problem);
                if (message is null)
                {
                    outbox.MarkDead(reminder, run, ReminderOutbox.Failed, problem!);
                    ReminderLog.Failed(_log, reminder.Key, reminder.CaseId, problem!);
                    tally.Failed++;
                    continue;
                }

                var attempted = false;
                JobLeaseLostException? lost = null;
                var result = await sender.SendAsync(message, () => attempted = BeginSend(outbox, reminder.Key, run, out lost), ct).ConfigureAwait(false);
                // The outbox's writes below block (an fsync, or a synchronous Npgsql call on a cluster): off the socket thread first.
                await Core.IO.InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
                if (lost is not null)
                {
                    // Taken over: the run that holds the lease now sends this reminder and the rest.
                    throw lost;
                }

                switch (result.Status)
                {
                    case SendStatus.Sent:
                        outbox.MarkSent(reminder.Key, run, result.Detail);
                        tally.Sent++;
                        Delivered?.Invoke(message.To.Mailboxes.First().Address, message.Subject ?? "");
                        break;
                    case SendStatus.Permanent:
                        outbox.MarkDead(reminder, run, ReminderOutbox.Failed, $"the SMTP server refused the message for good: {result.Detail}");
                        ReminderLog.Failed(_log, reminder.Key, reminder.CaseId, result.Detail);
                        tally.Failed++;
                        break;
                    case SendStatus.InDoubt:
                        outbox.MarkDead(reminder, run, ReminderOutbox.Unconfirmed, $"delivery unconfirmed: {result.Detail} while the message was being transmitted; it is not sent again automatically ('sluice dlq replay' sends it with the same Message-ID)");
                        ReminderLog.Failed(_log, reminder.Key, reminder.CaseId, result.Detail);
                        tally.Unconfirmed++;
                        break;
                    case SendStatus.Transient:
                        outbox.Release(reminder.Key, run, $"temporary failure: {result.Detail}", attempted);
                        tally.Waiting++;
                        break;
                    case SendStatus.Declined:
                        break;
                }
            }

            return null;
        }
        catch (SmtpUnavailableException e)
        {
            ReminderLog.Unavailable(_log, e.Message, claimed.Count - next);
            return e.Message;
        }
        finally
        {
            for (var i = next; i < claimed.Count; i++)
            {
                outbox.Release(claimed[i].Key, run, null, attempted: false);
                tally.Waiting++;
            }
        }
    }

    /// <summary>
    /// pending -> sending, the last step before the message is transmitted. On a cluster it is written only while the
    /// run's lease is still its own, and the lease cannot be taken over until it is written (<see cref="JobFence"/>): a
    /// runner paused past its lease sends nothing more, and the run that takes over finds any send in progress marked
    /// <c>sending</c>, to settle as unconfirmed, never to send again.
    /// </summary>
    private static bool BeginSend(ReminderOutbox outbox, string key, string run, out JobLeaseLostException? lost)
    {
        lost = null;
        try
        {
            using (JobFence.Hold())
            {
                return outbox.BeginSend(key, run);
            }
        }
        catch (JobLeaseLostException e)
        {
            lost = e;
            return false;
        }
    }

    /// <summary>The mail for one reminder, addresses decrypted here and nowhere else; null (with the reason) when it cannot be addressed.</summary>
    private MimeMessage? Compose(DueReminder r, SmtpOptions smtp, FieldProtector protector, out string? problem)
    {
        problem = null;
        string email, client;
        try
        {
            email = protector.Decrypt(r.AttorneyEmail);
            client = r.ClientId is null ? $"#{r.ClientKey[..12]}" : protector.Decrypt(r.ClientId);
        }
        catch (SluiceException e)
        {
            problem = $"cannot read the stored address: {e.Message}";
            return null;
        }

        if (!MailboxAddress.TryParse(email, out var to) || !to.Address.Contains('@', StringComparison.Ordinal))
        {
            problem = "attorney_email is not a valid mail address";
            return null;
        }

        var fields = new ReminderFields(r.CaseId, client, r.ClosureAt, r.DueAt, r.Occurrence, email, r.Rule);
        var message = new MimeMessage
        {
            Subject = options.Subject.Render(fields),
            Body = new TextPart("plain") { Text = options.Body.Render(fields) },
            MessageId = ReminderOutbox.MessageId(recipe, r.Key),
            Date = new DateTimeOffset(r.DueAt, TimeSpan.Zero),
        };
        message.From.Add(MailboxAddress.Parse(smtp.From));
        message.To.Add(to);
        message.Headers.Add("X-Sluice-Reminder-Key", r.Key);
        message.Headers.Add("X-Sluice-Case", r.CaseId);
        return message;
    }

    public bool CanReplay(DeadLetter letter) => letter?.Source == Outbox().LetterSource;

    /// <summary>A failed or unconfirmed delivery is requeued; the next run sends it, with the same Message-ID, if the rule still finds it due.</summary>
    public Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(letter);
        using var doc = JsonDocument.Parse(letter.Payload ?? "{}");
        if (!doc.RootElement.TryGetProperty("reminder_key", out var key) || key.GetString() is not { } k)
        {
            return Task.FromResult<string?>("the letter names no reminder_key");
        }

        return Task.FromResult(Outbox().Requeue(k));
    }

    private sealed class Tally
    {
        public int Sent { get; set; }

        public int Failed { get; set; }

        public int Unconfirmed { get; set; }

        public int Waiting { get; set; }
    }
}

internal static partial class ReminderLog
{
    [LoggerMessage(35000, LogLevel.Warning, "{Count} reminder(s) left in flight by a stopped run are unconfirmed; see the dead letters of {Source}")]
    public static partial void Unconfirmed(ILogger logger, int count, string source);

    [LoggerMessage(35001, LogLevel.Warning, "Reminder {Key} (case {CaseId}) not delivered: {Reason}")]
    public static partial void Failed(ILogger logger, string key, string caseId, string reason);

    [LoggerMessage(35002, LogLevel.Warning, "{Reason}; {Count} reminder(s) wait for the next run")]
    public static partial void Unavailable(ILogger logger, string reason, int count);
}
