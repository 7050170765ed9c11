using Sluice.Core.IO;

namespace Sluice.Tests.Core;

public class ProcessCpuTests
{
    [Fact]
    public void Utime_and_stime_are_fields_14_and_15_of_a_stat_line()
    {
        // A real line of a Postgres server process, cut after the fields that matter.
        var cpu = ProcessCpu.Parse("13874 (postgres) S 1 13874 13874 0 -1 4194304 4072 7862 0 9 523 41 16 11 20 0 1 0 1015925 223240192 7427");

        cpu.UserTicks.ShouldBe(523);
        cpu.SystemTicks.ShouldBe(41);
        cpu.Ticks.ShouldBe(564);
    }

    [Fact]
    public void A_command_name_with_spaces_and_parentheses_does_not_shift_the_fields()
    {
        // The kernel keeps 15 characters of the name; a process can call itself anything, ") 7 8" included.
        var cpu = ProcessCpu.Parse("4242 (walsender) 7 8 ) R 1 4242 4242 0 -1 4194560 100 0 0 0 1200 300 0 0 20 0 1 0 999 1000 10");

        cpu.UserTicks.ShouldBe(1200);
        cpu.SystemTicks.ShouldBe(300);
    }

    [Fact]
    public void Seconds_between_two_readings_use_the_clock_tick_rate()
    {
        var before = new ProcessCpu(100, 50);
        var after = new ProcessCpu(100 + (long)ProcessCpu.TicksPerSecond, 50 + (long)ProcessCpu.TicksPerSecond);

        ProcessCpu.Seconds(before, after).ShouldBe(2.0, 1e-9);
    }

    [Theory]
    [InlineData("")]
    [InlineData("4242 (sluice) S 1 2 3")]
    [InlineData("4242 (sluice) S 1 4242 4242 0 -1 4194560 100 0 0 0 twelve 300 0 0")]
    public void A_line_that_is_not_a_stat_line_is_refused_with_the_line(string line)
    {
        var error = Should.Throw<FormatException>(() => ProcessCpu.Parse(line));

        error.Message.ShouldContain("utime and stime");
        error.Message.ShouldContain(line);
    }
}
