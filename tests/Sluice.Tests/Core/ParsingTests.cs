using System.Text;
using Sluice.Core.Config;
using Sluice.Core.Text;

namespace Sluice.Tests.Core;

public sealed class ParsingTests
{
    [Theory]
    [InlineData("2025-11-08T10:30:00Z", "2025-11-08T10:30:00.0000000Z")]
    [InlineData("2025-11-08T10:30:00.123456Z", "2025-11-08T10:30:00.1234560Z")]
    [InlineData("2025-11-08T12:30:00+02:00", "2025-11-08T10:30:00.0000000Z")]
    [InlineData("2025-11-08T10:30:00", "2025-11-08T10:30:00.0000000Z")]
    [InlineData("2025-11-08 10:30:00Z", "2025-11-08T10:30:00.0000000Z")]
    public void Timestamps_are_read_as_utc_instants(string text, string expected)
    {
        Timestamps.TryParseUtc(Encoding.UTF8.GetBytes(text), out var utc).ShouldBeTrue();
        utc.Kind.ShouldBe(DateTimeKind.Utc);
        utc.ToString("O", System.Globalization.CultureInfo.InvariantCulture).ShouldBe(expected);
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("2025-13-01T00:00:00Z")]
    [InlineData("1731061800")]
    [InlineData("")]
    public void Non_timestamps_are_refused(string text) => Timestamps.TryParseUtc(Encoding.UTF8.GetBytes(text), out _).ShouldBeFalse();

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("2s", 2000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("30d", 2_592_000_000)]
    [InlineData("PT5M", 300_000)]
    [InlineData("P30D", 2_592_000_000)]
    public void Durations_accept_short_and_iso_forms(string text, long ms)
    {
        Durations.TryParse(text, out var value).ShouldBeTrue();
        value.TotalMilliseconds.ShouldBe(ms);
    }

    [Theory]
    [InlineData("5 minutes")]
    [InlineData("-2s")]
    [InlineData("P")]
    public void Bad_durations_are_refused(string text) => Durations.TryParse(text, out _).ShouldBeFalse();

    [Fact]
    public void Config_map_reports_wrong_types_and_unknown_keys_with_lines()
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse("a: x\nb: 3\nc: maybe\nd: 12parsecs\n", "r.yaml", errors)!;

        map.Int("a", 0);
        map.Int("b", 0, max: 2);
        map.Bool("c", false);
        map.Done();

        errors.All.Select(e => e.ToString()).ShouldBe([
            "r.yaml:1: a: expected a whole number, got 'x'",
            "r.yaml:2: b: must be between -2147483648 and 2, got 3",
            "r.yaml:3: c: expected true or false, got 'maybe'",
            "r.yaml:4: d: unknown key (known keys: a, b, c)",
        ]);
    }
}
