using Sluice.Core.Recipes;
using Sluice.Core.Text;

namespace Sluice.Tests.Core;

public sealed class SuggestionsAndCronTests
{
    [Theory]
    [InlineData("shedule", "schedule")]
    [InlineData("scheduel", "schedule")]
    [InlineData("batch_row", "batch_rows")]
    [InlineData("Schedule", "schedule")]
    public void A_mistyped_key_gets_the_known_key_it_is_near(string typed, string meant) =>
        Suggestions.Closest(typed, ["schedule", "type", "batch_rows", "target"]).ShouldBe(meant);

    [Theory]
    [InlineData("colour")]
    [InlineData("d")]
    [InlineData("sched")]
    public void A_key_near_none_gets_no_guess(string typed) =>
        Suggestions.Closest(typed, ["schedule", "type", "a"]).ShouldBeNull();

    [Theory]
    [InlineData("0 25 * * *", "the hour field '25' is not valid (field 2: 0-23")]
    [InlineData("61 * * * *", "the minute field '61' is not valid (field 1: 0-59")]
    [InlineData("0 2 32 * *", "the day-of-month field '32' is not valid (field 3: 1-31")]
    [InlineData("0 2 * 13 *", "the month field '13' is not valid (field 4: 1-12 or JAN-DEC")]
    [InlineData("0 2 * * MON-FUN", "the day-of-week field 'MON-FUN' is not valid (field 5: 0-6 or SUN-SAT")]
    [InlineData("0 2 * *", "has 4 field(s); five are expected: minute hour day-of-month month day-of-week (UTC)")]
    public void A_bad_cron_expression_names_the_wrong_field(string expression, string problem) =>
        CronCheck.Problem(expression)!.ShouldStartWith(problem);

    [Theory]
    [InlineData("0 2 * * *")]
    [InlineData("*/5 * * * *")]
    [InlineData("0 1 1-7 JAN MON")]
    public void A_good_cron_expression_has_no_problem(string expression) => CronCheck.Problem(expression).ShouldBeNull();
}
