using Sluice.Connectors.Postgres;
using Sluice.Core.Config;

namespace Sluice.Tests.EngagementCdc;

/// <summary>The postgres_cdc source's batching options are read and checked with the recipe.</summary>
public class PgCdcOptionsTests
{
    [Fact]
    public void Batch_linger_defaults_to_150_ms_is_read_and_out_of_range_is_an_error_naming_the_key()
    {
        var (defaults, none) = Parse("tables: [events]");
        none.ShouldBeEmpty();
        defaults.BatchLinger.ShouldBe(TimeSpan.FromMilliseconds(150));

        var (set, ok) = Parse("tables: [events]\nbatch_linger: 40ms");
        ok.ShouldBeEmpty();
        set.BatchLinger.ShouldBe(TimeSpan.FromMilliseconds(40));

        var (_, errors) = Parse("tables: [events]\nbatch_linger: 2s");
        errors.ShouldHaveSingleItem().ShouldContain("batch_linger");
        errors[0].ShouldContain("postgres_cdc: must be between 0ms and 1s, got 2000ms");
    }

    private static (PostgresCdcOptions Options, List<string> Errors) Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse(yaml, "recipe.yaml", errors)!;
        var options = PostgresCdcOptions.Parse(map, "r");
        return (options, errors.All.Select(e => e.ToString()).ToList());
    }
}
