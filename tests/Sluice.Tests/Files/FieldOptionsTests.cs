using Sluice.Connectors.Files;
using Sluice.Core.Config;
using static Sluice.Tests.Files.ReaderHarness;

namespace Sluice.Tests.Files;

/// <summary>
/// Field options of a file type: timestamp and date formats, a column named otherwise than the file's field, a text
/// field that takes any JSON value (<c>coerce</c>), and a field named <c>date</c> beside a partition column of another name.
/// A value that does not fit its format sends its record to the dead letters with line, field and why; the others land.
/// </summary>
public sealed class FieldOptionsTests
{
    private static readonly FileType Films = Type("""
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
          premiere: { type: date, format: "MMM d yyyy", required: false }
          seen_s: { type: timestamp, format: epoch_seconds, required: false }
          seen_ms: { type: timestamp, format: epoch_millis, required: false }
          date: { type: date, required: false }
        """);

    [Fact]
    public void Formatted_times_renamed_columns_coerced_text_and_a_date_field_land_as_declared()
    {
        var (run, batches) = Read(Films, """
            {"film_title": 1776, "released": "1972/11/17 19:30", "premiere": "Nov 9 1972", "seen_s": 1762597800, "seen_ms": "1762597800250", "date": "1972-11-17"}
            {"film_title": "Alien", "released": "1979/05/25 00:00", "seen_s": 1762597800.5, "seen_ms": 1762597800250}
            {"film_title": {"en": "Up", "fr": "Là-haut"}, "released": "2009/05/29 12:00"}
            {"film_title": 2.50, "released": "2009/05/29 12:00"}
            {"film_title": true, "released": "2009/05/29 12:00"}
            """);

        run.Issues.ShouldBeEmpty();
        run.Rows.ShouldBe(5);
        var batch = batches.Single();
        batch.Schema.Fields.Select(f => f.Name).ShouldBe(["title", "released", "premiere", "seen_s", "seen_ms", "date"]);
        Column(batches, 0).ShouldBe(["1776", "Alien", """{"en": "Up", "fr": "Là-haut"}""", "2.50", "true"]);
        batch.Value(1, 0).ShouldBe(new DateTime(1972, 11, 17, 19, 30, 0, DateTimeKind.Utc));
        batch.Value(2, 0).ShouldBe(new DateOnly(1972, 11, 9));
        batch.Value(3, 0).ShouldBe(new DateTime(2025, 11, 8, 10, 30, 0, DateTimeKind.Utc));
        batch.Value(4, 0).ShouldBe(new DateTime(2025, 11, 8, 10, 30, 0, 250, DateTimeKind.Utc));
        batch.Value(3, 1).ShouldBe(new DateTime(2025, 11, 8, 10, 30, 0, 500, DateTimeKind.Utc));
        batch.Value(4, 1).ShouldBe(new DateTime(2025, 11, 8, 10, 30, 0, 250, DateTimeKind.Utc));
        batch.Value(5, 0).ShouldBe(new DateOnly(1972, 11, 17));
        Films.LakeTable().PartitionKey.ShouldBe("event_date");
    }

    [Fact]
    public void Values_that_do_not_fit_their_format_dead_letter_their_record_with_line_field_and_why_and_the_rest_land()
    {
        var (run, _) = Read(Films, """
            {"film_title": "ok", "released": "1972/11/17 19:30"}
            {"film_title": "iso", "released": "1972-11-17T19:30:00Z"}
            {"film_title": "day", "released": "1972/11/17 19:30", "premiere": "9 Nov 1972"}
            {"film_title": "far", "released": "1972/11/17 19:30", "seen_s": 1e20}
            {"film_title": "word", "released": "1972/11/17 19:30", "seen_ms": "yesterday"}
            {"film_title": "ok too", "released": "1979/05/25 00:00"}
            """);

        run.Rows.ShouldBe(2);
        run.Issues.Select(i => (i.Line, i.Field, i.Message)).ShouldBe([
            (2, "released", "unparsable timestamp '1972-11-17T19:30:00Z' (expected the format 'yyyy/MM/dd HH:mm', for example '2031/12/29 13:45')"),
            (3, "premiere", "unparsable date '9 Nov 1972' (expected the format 'MMM d yyyy', for example 'Dec 29 2031')"),
            (4, "seen_s", "unparsable timestamp 1e20 (expected whole or fractional seconds since 1970-01-01 UTC, for example 1762597800; years 1 to 9999)"),
            (5, "seen_ms", "unparsable timestamp 'yesterday' (expected milliseconds since 1970-01-01 UTC, for example 1762597800000)"),
        ]);
        run.Quarantined.Count.ShouldBe(4);
    }

    [Fact]
    public void Without_coerce_a_text_field_still_refuses_a_number_naming_the_field_as_the_file_does()
    {
        var type = Type("""
            name: films
            pattern: "films_*.ndjson"
            format: ndjson
            table: raw.films
            event_time: released
            on_invalid: quarantine_rows
            fields:
              film_title: { type: text, column: title }
              released: timestamp
            """);

        var (run, _) = Read(type, """{"film_title": 1776, "released": "1972-11-17T19:30:00Z"}""");

        run.Issues.Single().ShouldBe(new RecordIssue(1, 1, "film_title", "wrong type: expected text, got number 1776"));
    }

    [Fact]
    public void Csv_columns_are_found_by_the_file_s_names_and_read_in_their_formats()
    {
        var type = Type("""
            name: trades
            pattern: "trades_*.csv"
            format: csv
            table: raw.trades
            event_time: "Trade Time"
            partition_column: trade_day
            on_invalid: quarantine_rows
            fields:
              Trade Time: { type: timestamp, format: "dd.MM.yyyy HH:mm", column: traded_at }
              date: { type: date, format: "MMM d yyyy" }
              amount: double
            """);

        var (run, batches) = Read(type, "amount,date,Trade Time\n1.5,Jan 2 2026,02.01.2026 09:15\n2,2026-01-02,02.01.2026 09:16\n");

        run.Rows.ShouldBe(1);
        batches.Single().Schema.Fields.Select(f => f.Name).ShouldBe(["traded_at", "date", "amount"]);
        batches.Single().Value(0, 0).ShouldBe(new DateTime(2026, 1, 2, 9, 15, 0, DateTimeKind.Utc));
        run.Issues.Single().ShouldBe(new RecordIssue(2, 3, "date", "unparsable date '2026-01-02' (expected the format 'MMM d yyyy', for example 'Dec 29 2031')"));
    }

    [Fact]
    public void A_field_named_date_is_refused_only_while_the_partition_column_has_that_name_and_the_message_says_what_to_do()
    {
        var errors = new ConfigErrors();
        FileTypeParser.Parse(ConfigMap.Parse("""
            name: trades
            pattern: "trades_*.csv"
            format: csv
            table: raw.trades
            event_time: at
            fields:
              at: timestamp
              date: date
              when: { type: timestamp, format: "HH:mm" }
              n: { type: integer, format: epoch_seconds, coerce: true }
              d: { type: date, format: epoch_millis }
              x: { type: text, column: at }
            """, "ft.yaml", errors)!);

        var lines = errors.All.Select(e => e.ToString()).ToList();
        lines.ShouldContain("ft.yaml:6: fields: 'date' is the name of the partition column; to keep the field's name, name the partition column otherwise (partition_column: event_date), or land the field in another column (date: { type: date, column: date_value })");
        lines.ShouldContain(l => l.StartsWith("ft.yaml:9: fields.when.format: 'HH:mm' is not a timestamp format with year, month and day", StringComparison.Ordinal));
        lines.ShouldContain("ft.yaml:10: fields.n.format: epoch_seconds applies to timestamp fields, not integer");
        lines.ShouldContain("ft.yaml:10: fields.n.coerce: applies to text fields (it reads any JSON value as its text), not integer");
        lines.ShouldContain("ft.yaml:11: fields.d.format: epoch_millis applies to timestamp fields, not date");
        lines.ShouldContain("ft.yaml:6: fields: two fields land in column 'at' (at, x): give one another column:");
    }

    [Fact]
    public void Field_options_and_the_partition_column_survive_the_catalog_and_old_entries_read_as_before()
    {
        var back = FileTypeParser.FromJson(FileTypeParser.ToJson(Films), "cli");

        Enumerable.Range(0, Films.Fields.Count).Select(back.ReadOf).ShouldBe(Enumerable.Range(0, Films.Fields.Count).Select(Films.ReadOf));
        back.Fields.ShouldBe(Films.Fields);
        back.PartitionColumn.ShouldBe("event_date");
        back.EventTime.ShouldBe("released");

        // A catalog entry written before these options: every field read as named, the partition column 'date'.
        var old = FileTypeParser.FromJson("""{"Name":"v","Pattern":"v_*.json","Format":"Json","RootKey":null,"Table":"raw.v","EventTime":"at","Fields":[{"Name":"at","Type":"timestamp","Required":true}],"OnInvalid":"RejectFile","MaxBadRows":10,"Delimiter":","}""", "recipe");
        old.ReadOf(0).ShouldBe(new FieldRead("at"));
        old.LakeTable().PartitionKey.ShouldBe("date");
    }
}
