using Sluice.Core.Metadata;
using Sluice.Models;
using Sluice.Models.Embedded;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// The embedded (duckdb) warehouse's model state against each provider, as <see cref="MetadataStoreConformance{TFixture}"/>
/// does for the core stores: on a cluster the worker that runs a models job's next slot goes on from what another
/// worker's run committed (applied dates, day records, table claims), so the second store instance here (another
/// worker) must see every write of the first, and a claim one job holds refuses every other job on every worker.
/// </summary>
public abstract class ModelStateConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    private static readonly DateOnly Day1 = new(2026, 2, 27);
    private static readonly DateOnly Day2 = new(2026, 2, 28);

    protected TFixture Fixture { get; } = new();

    public void Dispose()
    {
        Fixture.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void Applied_dates_and_day_records_written_with_a_commit_are_read_by_another_worker()
    {
        var first = State(Fixture.Store, "shop/daily");
        first.AppliedThrough("dw.fact").ShouldBeNull();
        first.Days().ShouldBeEmpty();
        using (var c = Fixture.Store.Connect())
        using (var tx = c.BeginTransaction())
        {
            first.SetApplied(c, tx, "dw.fact", Day1, Fixture.Time.GetUtcNow());
            first.SaveDays(c, tx, [Record(Day1, "f1", DayStatus.Done, ("dw.fact", "i1", "o1"))], Fixture.Time.GetUtcNow());
            tx.Rollback();
        }

        first.AppliedThrough("dw.fact").ShouldBeNull("a commit that did not happen wrote nothing");
        first.Days().ShouldBeEmpty();

        using (var c = Fixture.Store.Connect())
        using (var tx = c.BeginTransaction())
        {
            first.SetApplied(c, tx, "dw.fact", Day2, Fixture.Time.GetUtcNow());
            first.SaveDays(c, tx, [Record(Day1, "f1", DayStatus.Done, ("dw.fact", "i1", "o1")), Record(Day2, "f2", DayStatus.Done)], Fixture.Time.GetUtcNow());
            tx.Commit();
        }

        var other = State(Fixture.OpenStore("b"), "shop/daily");
        other.AppliedThrough("dw.fact").ShouldBe(Day2);
        var days = other.Days();
        days.Select(d => (d.Day, d.Fingerprint, d.Status)).ShouldBe(new[] { (Day1, "f1", DayStatus.Done), (Day2, "f2", DayStatus.Done) });
        days[0].Models["dw.fact"].ShouldBe(new ModelDayRecord("i1", "o1"));

        // The other worker's next run marks a day for redo and moves the model back: the first sees it, and another scope sees nothing.
        other.SaveDays([Record(Day1, "f1b", DayStatus.Redo)], Fixture.Time.GetUtcNow());
        using (var c = Fixture.OpenStore("b").Connect())
        using (var tx = c.BeginTransaction())
        {
            other.SetApplied(c, tx, "dw.fact", null, Fixture.Time.GetUtcNow());
            tx.Commit();
        }

        first.AppliedThrough("dw.fact").ShouldBeNull();
        first.Days()[0].ShouldSatisfyAllConditions(d => d.Fingerprint.ShouldBe("f1b"), d => d.Status.ShouldBe(DayStatus.Redo));
        State(Fixture.Store, "other/daily").Days().ShouldBeEmpty();
    }

    [Fact]
    public void A_table_claimed_by_one_job_refuses_every_other_job_on_every_worker_until_released()
    {
        var shop = State(Fixture.Store, "shop/daily");
        shop.Claim(["dw.fact", "mart.kpi"], Fixture.Time.GetUtcNow()).ShouldBe(new Dictionary<string, string> { ["dw.fact"] = "shop/daily", ["mart.kpi"] = "shop/daily" });

        var store = Fixture.OpenStore("b");
        var other = State(store, "other/daily");
        var owners = other.Claim(["mart.kpi", "mart.other"], Fixture.Time.GetUtcNow());
        owners["mart.kpi"].ShouldBe("shop/daily");
        owners.ContainsKey("mart.other").ShouldBeFalse("a refused job claims nothing");
        ModelTableClaims.LakeOwners(store).Keys.Order(StringComparer.Ordinal).ShouldBe(new[] { "dw.fact", "mart.kpi" });

        // Claiming again is the owner's no-op; releasing takes the claim from its owner only.
        State(store, "shop/daily").Claim(["dw.fact", "mart.kpi", "mart.extra"], Fixture.Time.GetUtcNow()).Count.ShouldBe(3);
        other.Release("mart.kpi", "other/daily").ShouldBeFalse("not its claim");
        other.Release("mart.kpi", "shop/daily").ShouldBeTrue();
        shop.Claim(["dw.fact"], Fixture.Time.GetUtcNow());
        other.Claim(["mart.kpi", "mart.other"], Fixture.Time.GetUtcNow()).ShouldBe(
            new Dictionary<string, string> { ["dw.fact"] = "shop/daily", ["mart.extra"] = "shop/daily", ["mart.kpi"] = "other/daily", ["mart.other"] = "other/daily" });
        ModelTableClaims.LakeOwners(Fixture.Store)["mart.kpi"].ShouldBe("other/daily");
    }

    private static LakeModelState State(MetadataStore store, string scope)
    {
        var state = new LakeModelState(store, scope);
        state.Migrate();
        return state;
    }

    private static DayRecord Record(DateOnly day, string fingerprint, DayStatus status, params (string Model, string Input, string Output)[] models) =>
        new(day, fingerprint, status) { Models = models.ToDictionary(m => m.Model, m => new ModelDayRecord(m.Input, m.Output), StringComparer.Ordinal) };
}

public sealed class SqliteModelStateTests : ModelStateConformance<SqliteMetadataFixture>;

public sealed class PostgresModelStateTests : ModelStateConformance<PostgresMetadataFixture>;
