using Sluice.Alerts;
using Sluice.Alerts.Conditions;
using Sluice.Connectors.Files;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Schema;
using Sluice.Jobs;
using Sluice.Models;
using Sluice.Serving.Auth;
using Sluice.Transforms;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// The metadata stores against each provider: the same tests for a data folder's SQLite and a cluster's Postgres schema
/// (one fixture each, a fresh store per test), so the one SQL model behaves the same on both.
/// </summary>
public abstract class MetadataStoreConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    protected TFixture Fixture { get; } = new();

    private MetadataStore Store => Fixture.Store;

    public void Dispose()
    {
        Fixture.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void A_checkpoint_is_written_replaced_and_kept_only_when_its_transaction_commits()
    {
        var checkpoints = new CheckpointStore(Store, Fixture.Time);
        checkpoints.Get("files:r").ShouldBeNull();
        checkpoints.Set("files:r", "1");
        checkpoints.Set("files:r", "2");
        checkpoints.Get("files:r").ShouldBe("2");

        using (var c = Store.Connect())
        using (var tx = c.BeginTransaction())
        {
            checkpoints.Set("files:r", "3", c, tx);
            tx.Rollback();
        }

        checkpoints.Get("files:r").ShouldBe("2", "a rolled-back batch leaves its checkpoint where it was");
    }

    [Fact]
    public void Dead_letters_are_deduplicated_filtered_counted_edited_and_discarded()
    {
        var letters = new DeadLetterStore(Store, Fixture.Time);
        letters.Add("files:shop/orders", "orders.json:3", "bad date", "{\"a\":1}", "files:shop:h1:3");
        letters.Add("files:shop/orders", "orders.json:3", "Bad Date again", "{\"a\":1}", "files:shop:h1:3");
        letters.Add("http:shop", "event 7", "missing field 'id'", "{}");
        Fixture.Time.Advance(TimeSpan.FromMinutes(10));
        letters.Add("http:shopping", "event 9", "missing field 'id'", "{}");

        letters.Count().ShouldBe(3, "the same dedup key is one letter, renewed");
        letters.HasKey("files:shop:h1:3").ShouldBeTrue();
        letters.List("files:").Single().Reason.ShouldBe("Bad Date again");
        letters.Count(status: DeadLetterStore.Pending).ShouldBe(3);
        letters.PendingByReason("shop").Select(g => (g.Source, g.Count)).OrderBy(g => g.Source, StringComparer.Ordinal)
            .ShouldBe(new[] { ("files:shop/orders", 1L), ("http:shop", 1L) }, false, "a recipe's letters, not those of a recipe whose name starts alike");
        letters.CountSince("shop", null, Fixture.Time.GetUtcNow().AddMinutes(-5)).ShouldBe(0);
        letters.CountSince("shopping", null, Fixture.Time.GetUtcNow().AddMinutes(-5)).ShouldBe(1);

        var (total, items) = letters.Find(new DeadLetterFilter(Recipe: "shop", Reason: "DATE"), limit: 10);
        total.ShouldBe(1, "the reason matches case-insensitively");
        var letter = items.Single();
        var (edited, refused) = letters.Edit(letter.Id, "{\"a\":2}", "ops", "fixed the date");
        refused.ShouldBeNull();
        edited!.Payload.ShouldBe("{\"a\":2}");
        letters.Edits(letter.Id).Single().Before.ShouldBe("{\"a\":1}");

        letters.Find(new DeadLetterFilter(Since: Fixture.Time.GetUtcNow().AddMinutes(-1)), limit: 10).Total.ShouldBe(1);
        letters.Discard(new DeadLetterFilter(Recipe: "shopping"), "test data").ShouldBe(1);
        letters.Discard([letter.Id], "duplicate").ShouldBe(1);
        letters.Edit(letter.Id, "{}", "ops", null).Refused.ShouldNotBeNull("a discarded letter is not edited");
        letters.Count(status: DeadLetterStore.Pending).ShouldBe(1);
        var pending = letters.List(status: DeadLetterStore.Pending).Single();
        letters.MarkReplayed(pending.Id);
        letters.Get(pending.Id)!.Status.ShouldBe(DeadLetterStore.Replayed);
    }

    [Fact]
    public void Job_runs_are_recorded_finished_listed_and_a_slot_is_claimed_once()
    {
        var runs = new JobRunStore(Store, Fixture.Time);
        var asOf = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
        var first = runs.Start("shop/daily", asOf, "manual");
        runs.Finish(first, JobRunStore.Succeeded, 10, 2, null);
        var model = runs.StartOnce("shop/models/orders", asOf, "schedule");
        model.ShouldNotBeNull();
        runs.StartOnce("shop/models/orders", asOf, "schedule").ShouldBeNull("the slot's run was started already");
        runs.StartOnce("shop/models/orders", asOf.AddDays(1), "schedule").ShouldNotBeNull("the next slot is another claim");
        runs.Start("shopping/daily", asOf, "manual");

        runs.History("shop").Select(r => r.Job).ShouldBe(new[] { "shop/models/orders", "shop/models/orders", "shop/daily" });
        var done = runs.Runs("shop/daily", 5).Single();
        (done.Status, done.RowsIn, done.RowsOut, done.AsOf).ShouldBe((JobRunStore.Succeeded, (long?)10, (long?)2, asOf));
        runs.Runs("shop/models/orders", 5)[1].Status.ShouldBe(JobRunStore.Running, "started by this live process");
    }

    [Fact]
    public async Task A_job_lease_is_one_runs_at_a_time_and_a_run_that_lost_it_can_neither_commit_nor_finish()
    {
        var runs = new JobRunStore(Store, Fixture.Time);
        var leases = new JobLeases(Store, Fixture.Time, TimeSpan.FromSeconds(30));
        var other = new JobLeases(Fixture.OpenStore("b"), Fixture.Time, TimeSpan.FromSeconds(30));
        var otherRuns = new JobRunStore(Fixture.OpenStore("b"), Fixture.Time);
        var slot = new DateTimeOffset(2026, 3, 1, 6, 0, 0, TimeSpan.Zero);

        var first = leases.StartSlot(runs, "shop/models", slot).ShouldNotBeNull();
        other.StartSlot(otherRuns, "shop/models", slot).ShouldBeNull("the slot was started by the first worker");
        other.StartSlot(otherRuns, "shop/models", slot.AddHours(1)).ShouldBeNull("the job's lease is held: the next slot is skipped, not run beside it");
        await Should.ThrowAsync<TimeoutException>(() => other.StartAsync(otherRuns, "shop/models", slot, "manual", TimeSpan.Zero, CancellationToken.None));
        other.HolderOf("shop/models").ShouldBe($"run {first.RunId} on {JobLeases.Holder}");

        Fixture.Time.Advance(TimeSpan.FromSeconds(20));
        leases.Renew(first).ShouldBeTrue();
        Fixture.Time.Advance(TimeSpan.FromSeconds(20));
        await Should.ThrowAsync<TimeoutException>(() => other.StartAsync(otherRuns, "shop/models", slot, "manual", TimeSpan.Zero, CancellationToken.None), "renewed at 20 s, the lease lasts to 50 s");

        // The first runner goes silent past its lease: another run takes the job, with a higher token.
        Fixture.Time.Advance(TimeSpan.FromSeconds(11));
        var second = await other.StartAsync(otherRuns, "shop/models", slot, "manual", TimeSpan.Zero, CancellationToken.None);
        second.Token.ShouldBeGreaterThan(first.Token);
        leases.Renew(first).ShouldBeFalse();
        Should.Throw<JobLeaseLostException>(() => leases.Fence(first)).Message.ShouldContain($"run {first.RunId} lost the job's lease");
        leases.Finish(first, JobRunStore.Succeeded, 1, 1, "late").ShouldBeFalse("a run that lost its lease writes no end");
        using (other.Fence(second))
        {
            // The live run commits its output here, the lease held.
        }

        other.Finish(second, JobRunStore.Succeeded, 5, 5, "ok").ShouldBeTrue();

        // The first run is still 'running' with no lease: the first worker to look marks it interrupted and, as it was
        // the slot's run, re-runs the slot, once.
        var rerun = other.TakeOverExpired(otherRuns, new HashSet<string>(["shop/models"])).Single();
        rerun.AsOf.ShouldBe(slot);
        leases.TakeOverExpired(runs, new HashSet<string>(["shop/models"])).ShouldBeEmpty("taken over already");
        other.Finish(rerun, JobRunStore.Succeeded, 5, 5, "redone").ShouldBeTrue();
        leases.TakeOverExpired(runs, new HashSet<string>(["shop/models"])).ShouldBeEmpty();

        runs.Runs("shop/models", 10).Select(r => (r.Id, r.Trigger, r.Status)).ShouldBe(new[]
        {
            (rerun.RunId, "rerun", JobRunStore.Succeeded),
            (second.RunId, "manual", JobRunStore.Succeeded),
            (first.RunId, "schedule", JobRunStore.Interrupted),
        });
    }

    [Fact]
    public async Task A_run_of_a_job_that_resumes_its_progress_is_re_run_whatever_started_it_three_times_at_most()
    {
        // A cluster's postgres_backfill (IResumableJob): its runs are started by `backfill`, not by a slot, and the
        // re-run goes on from the progress the job keeps itself.
        var runs = new JobRunStore(Store, Fixture.Time);
        var leases = new JobLeases(Store, Fixture.Time, TimeSpan.FromSeconds(30));
        var asOf = new DateTimeOffset(2026, 3, 2, 0, 0, 0, TimeSpan.Zero);
        var jobs = new HashSet<string>(["shop/backfill", "shop/daily"]);
        var resumable = new HashSet<string>(["shop/backfill"]);
        var backfill = await leases.StartAsync(runs, "shop/backfill", asOf, "backfill", TimeSpan.Zero, CancellationToken.None);
        await leases.StartAsync(runs, "shop/daily", asOf, "manual", TimeSpan.Zero, CancellationToken.None);
        leases.TakeOverExpired(runs, jobs, resumable).ShouldBeEmpty("both leases are live");

        // Both runners die: the backfill is re-run with a new lease; a manual run of another job is only marked.
        Fixture.Time.Advance(TimeSpan.FromSeconds(31));
        var rerun = leases.TakeOverExpired(runs, jobs, resumable).Single();
        (rerun.Job, rerun.AsOf).ShouldBe(("shop/backfill", asOf));
        rerun.Token.ShouldBeGreaterThan(backfill.Token);
        leases.TakeOverExpired(runs, jobs, resumable).ShouldBeEmpty("taken over already");

        // The re-run's runner dies too (a rolling restart of the workers): re-run again, and again, with ever higher tokens.
        var token = rerun.Token;
        for (var again = 2; again <= JobLeases.MaxReruns; again++)
        {
            Fixture.Time.Advance(TimeSpan.FromSeconds(31));
            var next = leases.TakeOverExpired(runs, jobs, resumable).Single();
            (next.Job, next.AsOf).ShouldBe(("shop/backfill", asOf));
            next.Token.ShouldBeGreaterThan(token);
            token = next.Token;
        }

        // The third re-run dies too: the run is left interrupted, the reason in its message, and the caller told.
        Fixture.Time.Advance(TimeSpan.FromSeconds(31));
        var given = new List<(JobLease Run, int Times)>();
        leases.TakeOverExpired(runs, jobs, resumable, (run, times) => given.Add((run, times))).ShouldBeEmpty("a run interrupted four times in a row is not re-run again");
        var last = runs.Runs("shop/backfill", 10);
        given.Select(g => (g.Run.Job, g.Run.RunId, g.Run.AsOf, g.Times)).ShouldBe(new[] { ("shop/backfill", last[0].Id, asOf, JobLeases.MaxReruns + 1) });
        last.Select(r => (r.Trigger, r.Status)).ShouldBe(
            new[] { ("rerun", JobRunStore.Interrupted), ("rerun", JobRunStore.Interrupted), ("rerun", JobRunStore.Interrupted), ("backfill", JobRunStore.Interrupted) });
        last[0].Message.ShouldNotBeNull().ShouldContain("not re-run again");
        Fixture.Time.Advance(TimeSpan.FromSeconds(31));
        leases.TakeOverExpired(runs, jobs, resumable).ShouldBeEmpty("nothing is left to take over");
        runs.Runs("shop/daily", 5).Single().Status.ShouldBe(JobRunStore.Interrupted);
    }

    [Fact]
    public void A_slot_whose_re_run_dies_too_is_re_run_again_by_the_next_worker_to_look()
    {
        // Two deaths in a row (a rolling restart): the slot's re-run is the slot's run, and is re-run in its turn.
        var runs = new JobRunStore(Store, Fixture.Time);
        var leases = new JobLeases(Store, Fixture.Time, TimeSpan.FromSeconds(30));
        var jobs = new HashSet<string>(["shop/models"]);
        var slot = new DateTimeOffset(2026, 3, 3, 6, 0, 0, TimeSpan.Zero);
        leases.StartSlot(runs, "shop/models", slot).ShouldNotBeNull();
        Fixture.Time.Advance(TimeSpan.FromSeconds(31));
        leases.TakeOverExpired(runs, jobs).Single().AsOf.ShouldBe(slot);
        Fixture.Time.Advance(TimeSpan.FromSeconds(31));
        var second = leases.TakeOverExpired(runs, jobs).Single();
        second.AsOf.ShouldBe(slot);
        leases.Finish(second, JobRunStore.Succeeded, 3, 3, "redone").ShouldBeTrue();
        runs.Runs("shop/models", 5).Select(r => (r.Trigger, r.Status)).ShouldBe(
            new[] { ("rerun", JobRunStore.Succeeded), ("rerun", JobRunStore.Interrupted), ("schedule", JobRunStore.Interrupted) });
    }

    [Fact]
    public void Model_test_results_keep_the_latest_outcome_per_test()
    {
        var results = new ModelTestResults(Store, Fixture.Time);
        var model = new ModelDefinition { Name = "mart.revenue", Kind = ModelKind.Table, File = "models/mart/revenue.sql" };
        var unique = new ModelTest(ModelTestKind.Unique, ["day"], 3);
        var empty = new Sluice.Lake.QueryResult([], []);
        results.Record("shop/models", [new ModelTestOutcome(model, unique, 2, empty)]);
        Fixture.Time.Advance(TimeSpan.FromMinutes(1));
        results.Record("shop/models", [new ModelTestOutcome(model, unique, 0, empty)]);
        results.Record("crm/models", [new ModelTestOutcome(model, unique, 0, empty, "relation does not exist")]);

        var latest = results.Latest("shop/models").Single();
        (latest.Model, latest.Status, latest.Message, latest.At).ShouldBe(("mart.revenue", ModelTestResults.Passed, (string?)null, Fixture.Time.GetUtcNow()));
        results.Latest("crm/models").Single().Status.ShouldBe(ModelTestResults.Error);
    }

    [Fact]
    public void Tokens_are_created_resolved_listed_and_revoked()
    {
        var tokens = new TokenStore(Store, Fixture.Time);
        var (info, token) = tokens.Create("acme", TokenRole.Writer, "ingest", ["orders", "clicks"]);
        var (reader, _) = tokens.Create("acme", TokenRole.Reader, null);

        var caller = tokens.Resolve(token)!;
        (caller.TokenId, caller.Tenant, caller.Role).ShouldBe((info.Id, "acme", TokenRole.Writer));
        caller.Streams!.ShouldBe(new[] { "orders", "clicks" });
        tokens.ResolveId(reader.Id)!.Role.ShouldBe(TokenRole.Reader);
        tokens.Resolve(token + "x").ShouldBeNull();
        tokens.List().Select(t => t.Id).ShouldBe(new[] { info.Id, reader.Id }.Order(StringComparer.Ordinal), "same creation time: ordered by id");

        tokens.Revoke(token).ShouldBeTrue();
        tokens.Revoke(info.Id).ShouldBeFalse("already revoked");
        tokens.Resolve(token).ShouldBeNull();
        tokens.List().Single().Id.ShouldBe(reader.Id);
        tokens.List(includeRevoked: true).Single(t => t.Id == info.Id).RevokedAt.ShouldBe(Fixture.Time.GetUtcNow());
    }

    [Fact]
    public void Settled_notices_beyond_the_kept_history_are_deleted_as_new_ones_come_and_pending_ones_never()
    {
        var alerts = new AlertStore(Store);
        var rule = new AlertRule("shop", "letters", AlertSeverity.Critical, new DeadLettersCondition("shop", null, 0, TimeSpan.FromMinutes(10)));
        var other = rule with { Recipe = "other" };
        var now = Fixture.Time.GetUtcNow();
        var ok = new AlertState(false, now, "fine", now);
        var firing = new AlertState(true, now, "3 letters", now);
        alerts.Record(new AlertTransition(rule, ok, firing), ["owed"]);
        alerts.Record(new AlertTransition(other, ok, firing), ["webhook"]);
        var owed = alerts.PendingNotices("shop").Single().Id;
        var otherId = alerts.PendingNotices("other").Single().Id;
        alerts.Delivered(otherId, now, 1);

        // A flapping alert: every transition is a notice, delivered at once.
        for (var i = 0; i < AlertStore.SettledKept + 5; i++)
        {
            alerts.Record(new AlertTransition(rule, i % 2 == 0 ? firing : ok, i % 2 == 0 ? ok : firing), ["webhook"]);
            alerts.Delivered(alerts.PendingNotices("shop").Single(n => n.Id != owed).Id, now, 1);
        }

        alerts.Record(new AlertTransition(rule, firing, ok), ["webhook"]);
        var shop = alerts.Notices("shop");
        shop.Count(n => n.Status == AlertStore.Sent).ShouldBe(AlertStore.SettledKept, "the newest settled notices are kept");
        shop.Where(n => n.Status == AlertStore.Pending).Select(n => n.Notice.Id).ShouldContain(owed, "a notice still owed is never deleted");
        shop.Count(n => n.Status == AlertStore.Pending).ShouldBe(2);
        shop.Where(n => n.Status == AlertStore.Sent).Min(n => n.Notice.Id).ShouldBeGreaterThan(owed + 6, "the oldest settled ones went");
        alerts.Notices("other").Single().Notice.Id.ShouldBe(otherId, "another recipe's history is its own");
    }

    [Fact]
    public void Alert_states_and_notices_are_kept_until_delivered_or_abandoned()
    {
        var alerts = new AlertStore(Store);
        var rule = new AlertRule("shop", "letters", AlertSeverity.Critical, new DeadLettersCondition("shop", null, 0, TimeSpan.FromMinutes(10)));
        var now = Fixture.Time.GetUtcNow();
        var ok = new AlertState(false, now, "fine", now);
        alerts.Watch("shop", "letters", ok);
        alerts.Watch("shop", "letters", ok with { Message = "ignored" });
        alerts.Load("shop")["letters"].ShouldBe(ok, "watching keeps the first state");

        var firing = new AlertState(true, now.AddMinutes(1), "3 letters", now);
        alerts.Record(new AlertTransition(rule, ok, firing), ["webhook", "email"]);
        alerts.Load("shop")["letters"].ShouldBe(firing);
        var pending = alerts.PendingNotices("shop");
        pending.Select(n => (n.Channel, n.Event, n.Severity, n.Attempts)).ShouldBe(new[] { ("webhook", "firing", "critical", 0), ("email", "firing", "critical", 0) });

        alerts.Delivered(pending[0].Id, now.AddMinutes(2), 1);
        alerts.Failed(pending[1].Id, 3, "smtp down", abandon: true);
        alerts.PendingNotices("shop").ShouldBeEmpty();
        alerts.Notices("shop").Select(n => (n.Status, n.Error, n.Notice.Attempts)).ShouldBe(new[] { (AlertStore.Sent, (string?)null, 1), (AlertStore.Abandoned, (string?)"smtp down", 3) });
    }

    [Fact]
    public void The_file_type_catalog_keeps_a_cli_type_over_a_shipped_one_and_the_ledger_records_content_once_committed()
    {
        var catalog = new FileTypeCatalog(Store, Fixture.Time);
        catalog.SyncRecipeTypes("shop", [Type("orders", "orders_*.json"), Type("clicks", "clicks_*.json")]);
        catalog.Add("shop", Type("orders", "orders_v2_*.json"));
        catalog.SyncRecipeTypes("shop", [Type("orders", "orders_*.json")]);
        catalog.All("shop").Select(t => (t.Name, t.Pattern, t.Origin)).ShouldBe(
            new[] { ("clicks", "clicks_*.json", FileTypeCatalog.FromRecipe), ("orders", "orders_v2_*.json", FileTypeCatalog.FromCli) });
        catalog.Remove("shop", "clicks").ShouldBeTrue();
        catalog.All("shop").Count.ShouldBe(1);

        var ledger = new FileLedger(Store, Fixture.Time);
        var entry = new LedgerEntry("shop", "h1", "orders_1.json", "orders", 10, 1);
        using (var c = Store.Connect())
        using (var tx = c.BeginTransaction())
        {
            ledger.Record(c, tx, entry);
            FileLedger.Contains(c, tx, "shop", "h1").ShouldBeTrue();
            tx.Rollback();
        }

        ledger.Contains("shop", "h1").ShouldBeFalse("the file's rows did not land: it is not in the ledger");
        using (var c = Store.Connect())
        using (var tx = c.BeginTransaction())
        {
            ledger.Record(c, tx, entry);
            tx.Commit();
        }

        ledger.Contains("shop", "h1").ShouldBeTrue();
        ledger.Contains("shopping", "h1").ShouldBeFalse("the ledger is per recipe");
    }

    [Fact]
    public void A_steps_rejected_rows_become_dead_letters_once_even_when_their_batch_is_read_again()
    {
        var letters = new DeadLetterStore(Store, Fixture.Time);
        var step = new StepLetters(letters, Store, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, "step:shop/orders/steps[0]:validate");
        var schema = new TableSchema("orders", [new FieldSpec("id", FieldType.Integer, true), new FieldSpec("_offset", FieldType.Integer, true)]);
        var batch = new ColumnBatch(schema, [new long?[] { 1, 2, 3 }, new long?[] { 100, 200, 300 }], 3);
        step.Add(batch, 300, [(0, "id: not a customer"), (2, "id: not a customer")]);
        step.Add(batch, 300, [(0, "id: not a customer"), (2, "id: not a customer")]);
        var listed = letters.List(status: DeadLetterStore.Pending);
        listed.Count.ShouldBe(2, "a batch read again after a crash does not list its rejections twice");
        listed.ShouldAllBe(l => l.Source == "step:shop/orders/steps[0]:validate" && l.Reason == "id: not a customer");
    }

    private static FileType Type(string name, string pattern) => FileTypeParser.FromJson(
        $$"""{"Name":"{{name}}","Pattern":"{{pattern}}","Format":"Json","RootKey":null,"Table":"raw.{{name}}","EventTime":"at","Fields":[{"Name":"at","Type":"timestamp","Required":true}],"OnInvalid":"RejectFile","MaxBadRows":10,"Delimiter":","}""",
        "recipe");
}

public sealed class SqliteMetadataStoreTests : MetadataStoreConformance<SqliteMetadataFixture>;

public sealed class PostgresMetadataStoreTests : MetadataStoreConformance<PostgresMetadataFixture>;
