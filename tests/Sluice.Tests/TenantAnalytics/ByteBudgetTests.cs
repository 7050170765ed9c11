using Sluice.Connectors.Http.Ingest;

namespace Sluice.Tests.TenantAnalytics;

public sealed class ByteBudgetTests
{
    private const long Mb = 1 << 20;

    [Fact]
    public void A_tenant_holds_at_most_its_share_and_the_others_keep_the_rest()
    {
        var budget = new ByteBudget(256 * Mb, 0.25);
        budget.TenantCapacity.ShouldBe(64 * Mb);

        budget.TryTake("slow", 32 * Mb).ShouldBe(BudgetAnswer.Taken);
        budget.TryTake("slow", 32 * Mb).ShouldBe(BudgetAnswer.Taken);
        for (var i = 0; i < 6; i++)
        {
            budget.TryTake("slow", 32 * Mb).ShouldBe(BudgetAnswer.TenantFull);
        }

        budget.UsedBy("slow").ShouldBe(64 * Mb);
        budget.Used.ShouldBe(64 * Mb);
        budget.TryTake("other", 32 * Mb).ShouldBe(BudgetAnswer.Taken);
        budget.TryTake("slow", 1).ShouldBe(BudgetAnswer.TenantFull);

        budget.Give("slow", 32 * Mb);
        budget.TryTake("slow", 32 * Mb).ShouldBe(BudgetAnswer.Taken);
        budget.Used.ShouldBe(96 * Mb);
    }

    [Fact]
    public void The_whole_budget_still_bounds_every_tenant_together()
    {
        var budget = new ByteBudget(100, 0.5);
        budget.TryTake("a", 50).ShouldBe(BudgetAnswer.Taken);
        budget.TryTake("b", 40).ShouldBe(BudgetAnswer.Taken);
        budget.TryTake("c", 20).ShouldBe(BudgetAnswer.Full);
        budget.TryTake("c", 10).ShouldBe(BudgetAnswer.Taken);
        budget.Used.ShouldBe(100);
        budget.TryTake("d", 1).ShouldBe(BudgetAnswer.Full);
    }

    [Fact]
    public void A_tenant_holding_nothing_may_send_one_request_larger_than_its_share()
    {
        var budget = new ByteBudget(100, 0.1);
        budget.TryTake("a", 40).ShouldBe(BudgetAnswer.Taken);
        budget.TryTake("a", 1).ShouldBe(BudgetAnswer.TenantFull);
        budget.TryTake("b", 40).ShouldBe(BudgetAnswer.Taken);

        // An empty budget takes one request even larger than the whole, as before shares existed.
        var empty = new ByteBudget(100);
        empty.TryTake("a", 150).ShouldBe(BudgetAnswer.Taken);
        empty.TryTake("b", 1).ShouldBe(BudgetAnswer.Full);
    }

    [Fact]
    public void Giving_back_everything_forgets_the_tenant_and_frees_the_budget()
    {
        var budget = new ByteBudget(100, 0.5);
        budget.TryTake("a", 30).ShouldBe(BudgetAnswer.Taken);
        budget.TryTake("a", 20).ShouldBe(BudgetAnswer.Taken);
        budget.Give("a", 30);
        budget.Give("a", 20);
        budget.UsedBy("a").ShouldBe(0);
        budget.Used.ShouldBe(0);
        budget.TryTake("a", 50).ShouldBe(BudgetAnswer.Taken);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void A_share_outside_0_to_1_is_refused(double share) =>
        Should.Throw<ArgumentOutOfRangeException>(() => new ByteBudget(100, share));
}
