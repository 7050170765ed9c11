using Microsoft.Extensions.Time.Testing;
using Sluice.Core.Text;

namespace Sluice.Tests.Core;

/// <summary>The plain progress line of a long command when its output is not a terminal, with the time remaining (issue 19).</summary>
public sealed class ProgressEstimateTests
{
    [Fact]
    public void The_line_says_how_far_and_the_time_left_at_the_rate_so_far()
    {
        var time = new FakeTimeProvider();
        var estimate = new ProgressEstimate(time);

        estimate.Line("run vehicle-files", 0, 400, "files").ShouldBe("run vehicle-files: 0/400 (files) 0%");
        time.Advance(TimeSpan.FromSeconds(10));
        estimate.Line("run vehicle-files", 100, 400, "files").ShouldBe("run vehicle-files: 100/400 (files) 25%, eta 30s");
        time.Advance(TimeSpan.FromSeconds(50));
        estimate.Line("run vehicle-files", 200, 400, "files").ShouldBe("run vehicle-files: 200/400 (files) 50%, eta 1m 00s");
        estimate.Remaining(400, 400).ShouldBe(TimeSpan.Zero);
        ProgressEstimate.Format(TimeSpan.FromMinutes(125)).ShouldBe("2h 05m");
    }
}
