using Sluice.Core.Config;
using Sluice.Models;
using Sluice.Models.Rules;

namespace Sluice.Tests.Models;

public sealed class ModelFileParserTests
{
    [Fact]
    public void A_snapshot_header_is_read_with_its_tests()
    {
        var errors = new ConfigErrors();
        var model = ModelFileParser.ParseSqlText("dim.sql", """
            /*
            kind: snapshot
            unique_key: customer_id
            tracked: [name, city]
            surrogate_key: customer_key
            absent: close
            tests:
              - unique: customer_key
              - relationships: {column: customer_id, to: staging.stg_customer.customer_id}
              - row_count: {min: 1}
            */
            SELECT customer_id, name, city FROM staging.stg_customer WHERE file_date = {{ as_of }}
            """, "dw.dim_customer", errors);

        errors.All.ShouldBeEmpty();
        model!.Kind.ShouldBe(ModelKind.Snapshot);
        model.Snapshot!.Tracked.ShouldBe(["name", "city"]);
        model.Snapshot.HardDeletes.ShouldBe(HardDeletes.Invalidate);
        model.Snapshot.ValidTo.ShouldBe("valid_to");
        model.SqlLine.ShouldBe(11);
        model.Tests.Select(t => t.Describe()).ShouldBe(["unique(customer_key)", "relationships(customer_id -> staging.stg_customer.customer_id)", "row_count(>= 1)"]);
        model.Tests[1].Line.ShouldBe(9);
    }

    [Fact]
    public void Header_mistakes_are_reported_with_the_model_file_line()
    {
        var errors = new ConfigErrors();
        ModelFileParser.ParseSqlText("m.sql", """

            /*
            kind: incremental
            unique_key: id
            partition_by: day
            tracked: [x]
            tests:
              - unique_ish: id
            */
            SELECT 1 AS id; SELECT {{ today }}
            """, "dw.m", errors).ShouldBeNull();

        errors.All.Select(e => e.ToString()).ShouldBe(
        [
            "m.sql:6: tracked: only applies to kind snapshot",
            "m.sql:5: partition_by: an incremental model merges by unique_key (keyed merge) or owns a date partition (partition_by): give exactly one of them",
            "m.sql:8: tests[0].unique_ish: unknown test (known: unique, not_null, accepted_values, relationships, row_count)",
            "m.sql:10: (sql): a model is a single statement: remove the ';' in the middle",
            "m.sql:10: (sql): unknown placeholder {{ today }} (known: {{ as_of }})",
        ], ignoreOrder: true);
    }

    [Fact]
    public void Snapshot_options_are_read_as_dbt_names_them()
    {
        var errors = new ConfigErrors();
        var model = ModelFileParser.ParseSqlText("dim.sql", """
            /*
            kind: snapshot
            strategy: timestamp
            unique_key: id
            updated_at: changed_at
            hard_deletes: new_record
            valid_to_current: 9999-12-31
            scd_id: version_id
            updated_at_column: version_updated_at
            on_schema_change: sync_all_columns
            */
            SELECT id, name, changed_at FROM raw.src
            """, "dw.dim", errors);

        errors.All.ShouldBeEmpty();
        var spec = model!.Snapshot!;
        spec.Strategy.ShouldBe(SnapshotStrategy.Timestamp);
        spec.UpdatedAt.ShouldBe("changed_at");
        spec.HardDeletes.ShouldBe(HardDeletes.NewRecord);
        spec.ValidToCurrent.ShouldBe("9999-12-31");
        spec.OnSchemaChange.ShouldBe(OnSchemaChange.SyncAllColumns);
        spec.EngineColumns.ShouldBe(["valid_from", "valid_to", "is_current", "is_deleted", "version_id", "version_updated_at"]);
        model.CanRewindByDate.ShouldBeFalse();
    }

    [Fact]
    public void Snapshot_option_mistakes_say_what_to_write()
    {
        var errors = new ConfigErrors();
        ModelFileParser.ParseSqlText("dim.sql", """
            /*
            kind: snapshot
            strategy: timestamp
            unique_key: id
            check_cols: [name]
            absent: close
            hard_deletes: invalidate
            valid_to_current: forever
            on_schema_change: ignore
            */
            SELECT id, name FROM raw.src
            """, "dw.dim", errors).ShouldBeNull();

        errors.All.Select(e => e.ToString()).ShouldBe(
        [
            "dim.sql:3: strategy: strategy timestamp needs updated_at: the column of the result that moves when the row changes",
            "dim.sql:5: check_cols: only applies to strategy check (the timestamp strategy compares updated_at)",
            "dim.sql:6: absent: absent is the earlier name of hard_deletes: give one of them (absent: keep is hard_deletes: ignore, absent: close is hard_deletes: invalidate)",
            "dim.sql:8: valid_to_current: 'forever' is not a date yyyy-MM-dd (for example 9999-12-31)",
            "dim.sql:9: on_schema_change: expected one of append_new_columns, sync_all_columns, fail, got 'ignore'",
        ], ignoreOrder: true);
    }

    [Fact]
    public void A_model_is_a_select()
    {
        var errors = new ConfigErrors();
        ModelFileParser.ParseSqlText("m.sql", "DELETE FROM dw.x", "dw.m", errors).ShouldBeNull();
        errors.All.Single().Message.ShouldBe("a model is one SELECT or WITH ... SELECT (the engine writes the table); found 'DELETE'");
    }

    [Fact]
    public void Clean_rules_are_read_and_checked()
    {
        var errors = new ConfigErrors();
        var model = ModelFileParser.ParseCleanText("stg.yaml", """
            kind: clean
            source: raw.sales
            columns:
              amount: {from: SalesAmount, type: "decimal(12,3)", required: true, min: {value: 0, reason: negative_amount}}
              day: {from: Day, type: date, formats: [dd/MM/yyyy, yyyy-MM-dd]}
              name: {from: Name, clean: [strip_control, collapse_whitespace, title_case]}
            duplicates: duplicate_row
            lookups:
              - {column: name, in: dw.dim_x.name}
            """, "staging.stg", errors);

        errors.All.ShouldBeEmpty();
        var spec = model!.Clean!;
        spec.Columns[0].SqlType.ShouldBe("DECIMAL(12,3)");
        spec.Columns[0].RequiredReason.ShouldBe("missing_amount");
        spec.Columns[0].Min.ShouldBe(new Bound("0", "negative_amount"));
        spec.Columns[1].Formats.ShouldBe(["dd/MM/yyyy", "yyyy-MM-dd"]);
        spec.Columns[2].Clean.ShouldBe([TextRule.StripControl, TextRule.CollapseWhitespace, TextRule.TitleCase]);
        spec.Lookups.Single().ShouldBe(new LookupRule("name", "dw.dim_x", "name", "unknown_name"));
        spec.DuplicateReason.ShouldBe("duplicate_row");
        spec.InvalidTextReason.ShouldBe("invalid_encoding");
    }

    [Fact]
    public void Clean_rule_mistakes_name_file_line_and_key()
    {
        var errors = new ConfigErrors();
        ModelFileParser.ParseCleanText("stg.yaml", """
            kind: clean
            source: raw.sales
            columns:
              amount: {from: SalesAmount, type: money}
              day: {from: Day, type: date, formats: [dd/MMM/yy]}
              name: {from: Name, clean: [shout], required: Missing Name}
            """, "staging.stg", errors).ShouldBeNull();

        errors.All.Select(e => e.ToString()).ShouldBe(
        [
            "stg.yaml:4: columns.amount.type: unknown type 'money' (expected text, integer, decimal, decimal(p,s), date or boolean)",
            "stg.yaml:5: columns.day.formats: 'dd/MMM/yy' is not a supported date format (three parts yyyy, MM or M, dd or d, with one separator between them, or none: yyyy-MM-dd, dd/MM/yyyy, MM/dd/yyyy, dd.MM.yyyy, yyyyMMdd)",
            "stg.yaml:6: columns.name.clean: unknown rule 'shout' (known: trim, strip_control, collapse_whitespace, lower, upper, title_case)",
            "stg.yaml:6: columns.name.required: 'Missing Name' is not a reason code (lower case letters, digits and '_', starting with a letter)",
        ], ignoreOrder: true);
    }

    [Theory]
    [InlineData("dd/MM/yyyy", '/', "dMy")]
    [InlineData("yyyy-MM-dd", '-', "yMd")]
    [InlineData("yyyyMMdd", null, "yMd")]
    [InlineData("M/d/yyyy", '/', "Mdy")]
    public void Date_formats_are_three_parts(string text, char? separator, string order)
    {
        var f = DateFormat.TryParse(text)!;
        f.Separator.ShouldBe(separator);
        string.Concat(f.Order).ShouldBe(order);
    }

    [Theory]
    [InlineData("dd/MM")]
    [InlineData("dd/MM-yyyy")]
    [InlineData("dMyyyy")]
    [InlineData("yyyy/MM/dd/HH")]
    public void Other_date_formats_are_refused(string text) => DateFormat.TryParse(text).ShouldBeNull();

    [Fact]
    public void Reads_says_which_input_days_a_day_depends_on_and_a_wrong_value_names_the_choices()
    {
        var errors = new ConfigErrors();
        var day = ModelFileParser.ParseSqlText("f.sql", "/*\nkind: incremental\npartition_by: d\nreads: day\n*/\nSELECT {{ as_of }} AS d", "dw.f", errors);
        var history = ModelFileParser.ParseSqlText("g.sql", "/*\nkind: incremental\npartition_by: d\n*/\nSELECT {{ as_of }} AS d", "dw.g", errors);
        errors.All.ShouldBeEmpty();
        day!.Reads.ShouldBe(InputWindow.Day);
        history!.Reads.ShouldBe(InputWindow.History);

        ModelFileParser.ParseSqlText("h.sql", "/*\nkind: incremental\npartition_by: d\nreads: weekly\n*/\nSELECT {{ as_of }} AS d", "dw.h", errors).ShouldBeNull();
        errors.All.ShouldHaveSingleItem().ToString().ShouldContain("reads: expected one of history, day, got 'weekly'");
    }

    [Fact]
    public void A_definition_fingerprint_ignores_tests_and_surrounding_white_space_but_not_the_sql_or_options()
    {
        var errors = new ConfigErrors();
        ModelDefinition Parse(string text) => ModelFileParser.ParseSqlText("m.sql", text, "dw.m", errors)!;
        var original = Parse("/*\nkind: incremental\npartition_by: d\n*/\nSELECT {{ as_of }} AS d\n");
        var tested = Parse("/*\nkind: incremental\npartition_by: d\ntests:\n  - not_null: [d]\n*/\n\nSELECT {{ as_of }} AS d   \n\n");
        var edited = Parse("/*\nkind: incremental\npartition_by: d\n*/\nSELECT {{ as_of }} + 1 AS d\n");
        var reads = Parse("/*\nkind: incremental\npartition_by: d\nreads: day\n*/\nSELECT {{ as_of }} AS d\n");
        errors.All.ShouldBeEmpty();
        ModelDayLedger.Definition(tested).ShouldBe(ModelDayLedger.Definition(original));
        ModelDayLedger.Definition(edited).ShouldNotBe(ModelDayLedger.Definition(original));
        ModelDayLedger.Definition(reads).ShouldNotBe(ModelDayLedger.Definition(original));
    }
}
