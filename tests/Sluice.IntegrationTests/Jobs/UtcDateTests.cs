using Sluice.Jobs.DailySummary;
using Sluice.Lake;

namespace Sluice.IntegrationTests.Jobs;

public sealed class UtcDateTests
{
    [Theory]
    [InlineData("2025-11-08 00:00:00+00", "2025-11-08")]
    [InlineData("2025-11-08 23:59:59.999999+00", "2025-11-08")]
    [InlineData("2025-11-09 01:30:00+02", "2025-11-08")]
    [InlineData("1969-12-31 23:59:59.5+00", "1969-12-31")]
    [InlineData("1900-03-01 00:00:00+00", "1900-03-01")]
    public void Epoch_arithmetic_gives_the_utc_date_a_cast_gives(string instant, string expected)
    {
        using var db = DuckDb.OpenMemory(Path.Combine(Path.GetTempPath(), "sluice-duckdb-tmp"));
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"SELECT CAST({DailySummaryJob.UtcDate($"TIMESTAMPTZ '{instant}'")} AS VARCHAR), CAST(CAST(TIMESTAMPTZ '{instant}' AS DATE) AS VARCHAR)";
        using var reader = cmd.ExecuteReader();
        reader.Read();

        reader.GetString(0).ShouldBe(expected);
        reader.GetString(1).ShouldBe(expected);
    }
}
