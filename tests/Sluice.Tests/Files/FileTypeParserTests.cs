using Sluice.Connectors.Files;
using Sluice.Core.Config;
using Sluice.Core.Schema;

namespace Sluice.Tests.Files;

public sealed class FileTypeParserTests
{
    [Fact]
    public void Short_and_long_field_forms_parse_with_required_by_default()
    {
        var type = ReaderHarness.Type("""
            name: t
            pattern: "t_*.ndjson"
            format: ndjson
            table: raw.t
            event_time: at
            on_invalid: quarantine_rows
            max_bad_rows: 5
            fields:
              id: integer
              at: timestamp
              note: { type: string, required: false }
            """);

        type.Format.ShouldBe(FileFormat.Ndjson);
        type.OnInvalid.ShouldBe(InvalidRowPolicy.QuarantineRows);
        type.MaxBadRows.ShouldBe(5);
        type.Fields.ShouldBe([new FieldSpec("id", FieldType.Integer, true), new FieldSpec("at", FieldType.Timestamp, true), new FieldSpec("note", FieldType.String, false)]);
    }

    [Fact]
    public void Every_problem_is_reported_with_file_line_and_key()
    {
        var errors = new ConfigErrors();
        FileTypeParser.Parse(ConfigMap.Parse("""
            name: bad-name
            pattern: "x/*.json"
            table: notqualified
            event_time: when
            on_invalid: drop_everything
            colour: blue
            fields:
              id: integr
              at: { type: timestamp, requird: true }
            """, "ft.yaml", errors)!);

        var lines = errors.All.Select(e => e.ToString()).ToList();
        lines.ShouldContain(l => l.StartsWith("ft.yaml:5: on_invalid: expected one of reject_file, quarantine_rows", StringComparison.Ordinal));
        lines.ShouldContain("ft.yaml:6: colour: unknown key (known keys: delimiter, event_time, fields, format, header, invalid_text, lineage, load_order, max_bad_rows, name, name_date, on_invalid, partition_column, pattern, root_key, table)");
        lines.ShouldContain(l => l.StartsWith("ft.yaml:8: fields.id: unknown field type 'integr'", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("ft.yaml:9: fields.at.requird: unknown key", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("ft.yaml:1: name: 'bad-name' must be letters", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("ft.yaml:3: table: 'notqualified' must be zone.name", StringComparison.Ordinal));
        lines.ShouldContain("ft.yaml:2: pattern: a pattern matches file names only, without folders");
        lines.ShouldContain(l => l.StartsWith("ft.yaml:4: event_time: 'when' is not one of the fields", StringComparison.Ordinal));
    }

    [Fact]
    public void Catalog_json_round_trips()
    {
        var type = ReaderHarness.VehicleEvents;

        var back = FileTypeParser.FromJson(FileTypeParser.ToJson(type), "cli");

        back.ShouldBe(type with { Origin = "cli" }, new FileTypeComparer());
    }

    [Theory]
    [InlineData("vehicles_events_20251108.json", "vehicle_events")]
    [InlineData("vehicles_events_.json", "vehicle_events")]
    [InlineData("vehicles_events_1.json.bak", null)]
    [InlineData("Vehicles_events_1.json", null)]
    [InlineData("vehicles_status_1.json", "vehicle_status")]
    public void Names_match_the_most_specific_pattern(string name, string? expected)
    {
        var status = ReaderHarness.VehicleEvents with { Name = "vehicle_status", Pattern = "vehicles_status_*.json" };
        var any = ReaderHarness.VehicleEvents with { Name = "any_json", Pattern = "*.jsonl" };

        FileTypeCatalog.Match([any, ReaderHarness.VehicleEvents, status], name)?.Name.ShouldBe(expected);
        if (expected is null) { FileTypeCatalog.Match([any, ReaderHarness.VehicleEvents, status], name).ShouldBeNull(); }
    }

    [Theory]
    [InlineData(".vehicles_events_1.json.tmp", true)]
    [InlineData("vehicles_events_1.json.part", true)]
    [InlineData("~lock.json", true)]
    [InlineData("vehicles_events_1.json", false)]
    public void Partial_names_are_recognised(string name, bool partial) => DropFolder.IsPartialName(name).ShouldBe(partial);

    private sealed class FileTypeComparer : IEqualityComparer<FileType>
    {
        public bool Equals(FileType? x, FileType? y) =>
            x is not null && y is not null && x.Name == y.Name && x.Pattern == y.Pattern && x.Format == y.Format && x.RootKey == y.RootKey &&
            x.Table == y.Table && x.EventTime == y.EventTime && x.Fields.SequenceEqual(y.Fields) && x.OnInvalid == y.OnInvalid &&
            x.MaxBadRows == y.MaxBadRows && x.Delimiter == y.Delimiter && x.Origin == y.Origin;

        public int GetHashCode(FileType obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }
}
