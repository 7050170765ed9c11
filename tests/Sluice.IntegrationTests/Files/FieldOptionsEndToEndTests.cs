using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Core;
using Sluice.IntegrationTests.Support;
using Sluice.Hosting;

namespace Sluice.IntegrationTests.Files;

/// <summary>
/// A recipe built from YAML only, run with <c>sluice run --once</c>: an NDJSON drop whose file type reads a timestamp in
/// its own pattern and one in epoch milliseconds, lands <c>film_title</c> (a number for the film 1776) in column
/// <c>title</c>, and has a field named <c>date</c> beside a partition column named <c>event_date</c>. The good records land
/// in the lake under <c>event_date=</c> folders; the bad one is a dead letter naming file, line, field and why.
/// </summary>
public sealed class FieldOptionsEndToEndTests
{
    [Fact]
    public async Task Formatted_renamed_and_coerced_fields_and_a_date_field_land_and_a_bad_value_is_a_dead_letter()
    {
        using var temp = new TempFolder("sluice-field-options");
        var recipe = temp.Sub("films");
        Directory.CreateDirectory(Path.Combine(recipe, "filetypes"));
        await File.WriteAllTextAsync(Path.Combine(recipe, "recipe.yaml"), """
            name: films
            pipelines:
              ingest:
                source:
                  type: files
                  folder: films
                  file_types: filetypes
            """);
        await File.WriteAllTextAsync(Path.Combine(recipe, "filetypes", "films.yaml"), """
            name: films
            pattern: "films_*.ndjson"
            format: ndjson
            table: raw.films
            event_time: released
            partition_column: event_date
            on_invalid: quarantine_rows
            fields:
              film_title: { type: text, column: title, coerce: true }
              released: { type: timestamp, format: "yyyy/MM/dd HH:mm" }
              seen: { type: timestamp, format: epoch_millis, required: false }
              date: { type: date, format: "MMM d yyyy", required: false }
            """);
        var data = temp.Sub("data");
        var incoming = Path.Combine(data, "films", "incoming");
        Directory.CreateDirectory(incoming);
        await File.WriteAllTextAsync(Path.Combine(incoming, "films_1.ndjson"), """
            {"film_title": 1776, "released": "1972/11/17 19:30", "seen": 1762597800250, "date": "Nov 9 1972"}
            {"film_title": "Alien", "released": "25 May 1979"}
            {"film_title": "Up", "released": "2009/05/29 12:00", "date": "May 13 2009"}

            """);
        var env = new Dictionary<string, string>(StringComparer.Ordinal) { ["SLUICE_RECIPES"] = temp.Path };

        using (var run = SluiceProcess.Start(data, env, "run", "films", "--once"))
        {
            (await run.WaitAsync(TimeSpan.FromSeconds(120))).ShouldBe(0, run.Stderr);
        }

        using var services = new EngineServices(new DataDirectory(data), TimeProvider.System, NullLoggerFactory.Instance);
        var rows = services.Query.Query("SELECT title, CAST(released AS VARCHAR), CAST(seen AS VARCHAR), CAST(date AS VARCHAR), CAST(event_date AS VARCHAR) FROM raw.films ORDER BY title").Rows
            .Select(r => string.Join(" | ", r.Select(v => v?.ToString() ?? "∅"))).ToList();
        rows.ShouldBe([
            "1776 | 1972-11-17 19:30:00+00 | 2025-11-08 10:30:00.25+00 | 1972-11-09 | 1972-11-17",
            "Up | 2009-05-29 12:00:00+00 | ∅ | 2009-05-13 | 2009-05-29",
        ]);
        Directory.GetDirectories(Path.Combine(data, "lake", "raw", "films")).Select(Path.GetFileName).Order().ShouldBe(["event_date=1972-11-17", "event_date=2009-05-29"]);
        var letter = services.DeadLetters.List("files:films").ShouldHaveSingleItem();
        letter.Position.ShouldBe("films_1.ndjson: line 2, record 2, field 'released'");
        letter.Reason.ShouldBe("unparsable timestamp '25 May 1979' (expected the format 'yyyy/MM/dd HH:mm', for example '2031/12/29 13:45')");
        letter.Payload.ShouldBe("""{"film_title": "Alien", "released": "25 May 1979"}""");
    }
}
