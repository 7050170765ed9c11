using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Recipes.Reminders;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// repeat-reminder's send-once outbox against each provider, as <see cref="MetadataStoreConformance{TFixture}"/> does
/// for the core stores: on a cluster the run that takes a <c>send_reminders</c> job over, on another worker, goes on
/// from the outbox the dead run left (its send in progress settled as unconfirmed, never sent again; what it only
/// claimed sent by the new run), and the dead run's late writes change nothing.
/// </summary>
public abstract class ReminderOutboxConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    private static readonly DateTime Closure = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    protected TFixture Fixture { get; } = new();

    public void Dispose()
    {
        Fixture.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void A_run_that_takes_over_settles_the_send_left_in_progress_as_unconfirmed_sends_what_was_only_claimed_and_the_dead_runs_late_writes_change_nothing()
    {
        var first = Outbox(Fixture.Store);
        var due = new[] { Due("a"), Due("b"), Due("c") };
        first.RecordIntents(due);
        first.RecordIntents(due);
        Counts(first).ShouldBe("pending:3", "an intent is recorded once");
        first.Claim(["a", "b", "c"], "run1", TimeSpan.FromMinutes(10)).ShouldBe(["a", "b", "c"]);
        first.BeginSend("a", "run1").ShouldBeTrue();
        first.MarkSent("a", "run1", "250 accepted");
        first.BeginSend("b", "run1").ShouldBeTrue();

        // run1 stops answering; past its claims' lease, the next run (on another worker) settles and claims.
        Fixture.Time.Advance(TimeSpan.FromMinutes(11));
        var second = Outbox(Fixture.OpenStore("b"));
        second.RecoverAbandoned().ShouldBe(1);
        second.RecoverAbandoned().ShouldBe(0, "settled once");
        second.RecordIntents(due);
        second.WithdrawStale(new HashSet<string>(["a", "b", "c"], StringComparer.Ordinal), Fixture.Time.GetUtcNow()).ShouldBe(0);
        second.Claim(["a", "b", "c"], "run2", TimeSpan.FromMinutes(10)).ShouldBe(["c"], "a is sent, b unconfirmed: only c is sent again");

        first.MarkSent("b", "run1", "250 late");
        first.BeginSend("c", "run1").ShouldBeFalse("c is run2's now");
        second.BeginSend("c", "run2").ShouldBeTrue();
        second.MarkSent("c", "run2", "250 accepted");
        Counts(second).ShouldBe("sent:2,unconfirmed:1");

        var letters = new DeadLetterStore(Fixture.Store, Fixture.Time).List("mail:rr/send");
        letters.ShouldHaveSingleItem().Reason.ShouldContain("delivery unconfirmed");
        var outcomes = second.Unpublished();
        outcomes.Select(o => $"{o.Key}:{o.Status}").Order(StringComparer.Ordinal).ShouldBe(["a:sent", "b:unconfirmed", "c:sent"]);
        using (var c = Fixture.Store.Connect())
        using (var tx = c.BeginTransaction())
        {
            first.MarkPublished(c, tx, outcomes);
            tx.Commit();
        }

        second.Unpublished().ShouldBeEmpty("published by either worker");
        second.Requeue("b").ShouldBeNull();
        first.Unpublished().ShouldHaveSingleItem().Status.ShouldBe(ReminderOutbox.Requeued);
        ReminderOutbox.OfClient(Fixture.OpenStore("b"), "rr", "client", 10).Select(r => r.Status).Order(StringComparer.Ordinal).ShouldBe(["requeued", "sent", "sent"]);
    }

    /// <summary>The outbox's reminders by status, <c>sent:2,unconfirmed:1</c>.</summary>
    protected static string Counts(ReminderOutbox outbox) => string.Join(",", outbox.Counts().OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}:{c.Value}"));

    protected ReminderOutbox Outbox(MetadataStore store) => new(store, new DeadLetterStore(store, Fixture.Time), Fixture.Time, "rr", "send");

    private static DueReminder Due(string key) => new(key, "send", "client", "CASE-" + key, 0, Closure, Closure.AddDays(30), null, "sealed-address");
}

public sealed class SqliteReminderOutboxTests : ReminderOutboxConformance<SqliteMetadataFixture>;

public sealed class PostgresReminderOutboxTests : ReminderOutboxConformance<PostgresMetadataFixture>
{
    [Fact]
    public void On_the_shared_store_another_runs_claim_is_free_at_once_since_the_run_asking_holds_the_jobs_lease()
    {
        var first = Outbox(Fixture.Store);
        first.RecordIntents([new DueReminder("k", "send", "client", "CASE-k", 0, DateTime.UnixEpoch, DateTime.UnixEpoch.AddDays(30), null, "sealed")]);
        first.Claim(["k"], "run1", TimeSpan.FromMinutes(10)).ShouldBe(["k"]);
        first.BeginSend("k", "run1").ShouldBeTrue();

        // No clock moved: a process id on the shared store names no process of another machine; the job's lease decides.
        var second = Outbox(Fixture.OpenStore("b"));
        second.RecoverAbandoned().ShouldBe(1);
        Counts(second).ShouldBe("unconfirmed:1");
    }
}
