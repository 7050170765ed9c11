using Sluice.Core;
using Sluice.Jobs;
using Sluice.Models;

namespace Sluice.IntegrationTests.SqlModels;

/// <summary>Two recipes' models naming the same table (issue 19): the second is refused, the first's rows stay its own, until the claim is released.</summary>
public sealed class TableClaimTests
{
    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task A_second_recipe_building_the_same_table_is_refused_before_it_writes(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("mart.daily_revenue", "SELECT day, sum(amount) AS revenue FROM raw.src WHERE day = {{ as_of }} GROUP BY day");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (10), (5)) v(amount)");

        (await h.Processor().ProcessAsync([], "manual", null, CancellationToken.None)).Message.ShouldContain("ran");

        var refused = await Should.ThrowAsync<SluiceException>(() => h.Processor("crm/daily").ProcessAsync([new DateOnly(2024, 3, 1)], "manual", null, CancellationToken.None));
        refused.Message.ShouldContain("crm/daily: model table(s) mart.daily_revenue (built by test/models) already belong to another models job");
        refused.Message.ShouldContain("Give this recipe's models a schema of their own");

        // The owner still runs, and its rows are its own.
        (await h.Processor().ProcessAsync([new DateOnly(2024, 3, 1)], "manual", null, CancellationToken.None)).Message.ShouldContain("ran");
        (await h.Lines("SELECT revenue FROM mart.daily_revenue")).ShouldBe(["15"]);
    }

    [Theory]
    [InlineData("duckdb")]
    [InlineData("postgres")]
    public async Task Release_hands_a_claimed_table_to_the_next_job_but_not_while_a_run_holds_it_nor_for_another_recipe(string engine)
    {
        await using var h = await ModelsHarness.CreateAsync(engine);
        h.Model("mart.daily_revenue", "SELECT day, sum(amount) AS revenue FROM raw.src WHERE day = {{ as_of }} GROUP BY day");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (10), (5)) v(amount)");
        var day = new DateOnly(2024, 3, 1);
        await h.Processor().ProcessAsync([], "manual", null, CancellationToken.None);
        await Should.ThrowAsync<SluiceException>(() => h.Processor("crm/daily").ProcessAsync([day], "manual", null, CancellationToken.None));

        (await Should.ThrowAsync<SluiceException>(() => ModelTableRelease.ReleaseAsync(h.Services, h.Postgres, "mart.nothing", null, CancellationToken.None)))
            .Message.ShouldContain("mart.nothing is not claimed by any models job in the ");
        (await Should.ThrowAsync<SluiceException>(() => ModelTableRelease.ReleaseAsync(h.Services, h.Postgres, "mart.daily_revenue", "crm", CancellationToken.None)))
            .Message.ShouldContain("mart.daily_revenue belongs to test/models in the ");
        using (ProcessLock.TryAcquire(JobRunner.LockFile(h.Services.Data, "test", "models")).ShouldNotBeNull())
        {
            (await Should.ThrowAsync<SluiceException>(() => ModelTableRelease.ReleaseAsync(h.Services, h.Postgres, "mart.daily_revenue", null, CancellationToken.None)))
                .Message.ShouldContain("mart.daily_revenue is in use: a run of test/models");
        }

        (await ModelTableRelease.ReleaseAsync(h.Services, h.Postgres, "mart.daily_revenue", "test", CancellationToken.None))
            .ShouldStartWith("released mart.daily_revenue from test/models in the ");

        // The table and its rows stayed (read without preparing a warehouse, which would claim it again); the next job
        // to build it claims it, and the former owner is refused.
        (await RevenueAsync(h)).ShouldBe(15);
        (await h.Processor("crm/daily").ProcessAsync([day], "manual", null, CancellationToken.None)).Message.ShouldContain("ran");
        (await Should.ThrowAsync<SluiceException>(() => h.Processor().ProcessAsync([day], "manual", null, CancellationToken.None)))
            .Message.ShouldContain("test/models: model table(s) mart.daily_revenue (built by crm/daily)");
    }

    [Fact]
    public async Task The_release_command_says_whose_claim_it_removed_and_fails_on_a_table_nobody_claims()
    {
        await using var h = await ModelsHarness.CreateAsync("duckdb");
        h.Model("mart.daily_revenue", "SELECT day, sum(amount) AS revenue FROM raw.src WHERE day = {{ as_of }} GROUP BY day");
        h.Day("2024-03-01", "SELECT * FROM (VALUES (10), (5)) v(amount)");
        await h.Processor().ProcessAsync([], "manual", null, CancellationToken.None);

        var unknown = await Support.SluiceProcess.RunAsync(h.Services.Data.Root, "models", "release", "mart.revenue");
        unknown.Code.ShouldNotBe(0);
        unknown.Err.ShouldContain("mart.revenue is not claimed by any models job in the data folder");
        unknown.Err.ShouldContain("Claimed tables: mart.daily_revenue.");

        var released = await Support.SluiceProcess.RunAsync(h.Services.Data.Root, "models", "release", "mart.daily_revenue");
        released.Code.ShouldBe(0, released.Err);
        released.Out.ShouldContain($"released mart.daily_revenue from test/models in the data folder {h.Services.Data.Root}");
        ModelTableClaims.LakeOwners(h.Services.Metadata).ShouldBeEmpty();
    }

    private static async Task<long> RevenueAsync(ModelsHarness h)
    {
        const string sql = "SELECT CAST(sum(revenue) AS BIGINT) FROM mart.daily_revenue";
        if (h.Postgres is null) { return Convert.ToInt64(h.Services.Query.Query(sql).Rows[0][0], System.Globalization.CultureInfo.InvariantCulture); }
        await using var c = new Npgsql.NpgsqlConnection(h.Postgres.ConnectionString);
        await c.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
