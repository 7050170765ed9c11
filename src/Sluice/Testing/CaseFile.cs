using Sluice.Core.Config;

namespace Sluice.Testing;

/// <summary>Reads <c>case.yaml</c>: every problem with its file, line and key, and every file it names checked to exist.</summary>
public static class CaseFile
{
    public const string Name = "case.yaml";

    /// <summary>Longest a step's inputs may take to be processed by default: a recipe's own run is seconds; CI machines are slow.</summary>
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    /// <summary>The cases under <c>&lt;recipe&gt;/tests/</c>, in name order (or the one named).</summary>
    public static IReadOnlyList<string> Find(string recipeFolder, string? only)
    {
        var tests = System.IO.Path.Combine(recipeFolder, "tests");
        var cases = Directory.Exists(tests)
            ? Directory.GetDirectories(tests).Where(d => File.Exists(System.IO.Path.Combine(d, Name))).Order(StringComparer.Ordinal).ToList()
            : [];
        if (only is not null)
        {
            var found = cases.FirstOrDefault(c => System.IO.Path.GetFileName(c) == only);
            return found is null
                ? throw new Core.SluiceException($"no case '{only}' in {TestCase.Display(tests)} (cases: {(cases.Count == 0 ? "none" : string.Join(", ", cases.Select(System.IO.Path.GetFileName)))})")
                : [found];
        }

        return cases.Count == 0
            ? throw new Core.SluiceException($"no test cases in {TestCase.Display(tests)}: each case is a folder holding {Name} (docs/TESTING.md)")
            : cases;
    }

    public static TestCase Load(string folder)
    {
        var errors = new ConfigErrors();
        var path = System.IO.Path.Combine(folder, Name);
        var display = TestCase.Display(path);
        var map = ConfigMap.Parse(File.ReadAllText(path), display, errors);
        var read = map is null ? null : Parse(map, folder);
        errors.ThrowIfAny();
        return read!;
    }

    /// <summary>Describes case.yaml for the reference (docs/reference/recipe.md): every key, every kind of input.</summary>
    public static void Describe(ConfigMap map) => Parse(map, Path.Combine(Path.GetTempPath(), "sluice-reference", "<case>"));

    private static TestCase Parse(ConfigMap map, string folder)
    {
        var description = map.String("description", doc: "What the case shows (printed by sluice test).") ?? "";
        var volatileColumns = map.StringList("volatile", doc: "Columns left out of every comparison: values that differ between runs (load times, generated ids).");
        var steps = new List<CaseStep>();
        var number = 0;
        foreach (var step in map.MapList("steps", doc: "The case's steps, run in order on one engine: each feeds its inputs, waits until they are processed, then compares its expectations."))
        {
            number++;
            steps.Add(Step(folder, step, number));
        }

        if (number == 0) { map.Error("steps", "a case needs at least one step (inputs, then expect)"); }
        map.Done();
        return new TestCase(System.IO.Path.GetFileName(folder), folder, description, volatileColumns, steps);
    }

    private static CaseStep Step(string folder, ConfigMap step, int number)
    {
        var inputs = new List<CaseInput>();
        foreach (var input in step.MapList("inputs", doc: "What the step feeds the recipe, in order: each entry is one of files, http, sql or pages."))
        {
            if (Input(folder, input) is { } read) { inputs.Add(read); }
        }

        var expect = new List<CaseExpectation>();
        foreach (var e in step.MapList("expect", doc: "The rows each output must hold after the step (every row, in any order): a lake table or another target, and the expected rows."))
        {
            if (Expectation(folder, e) is { } read) { expect.Add(read); }
        }

        if (expect.Count == 0) { step.Error("expect", "a step needs at least one expectation (table or target, and rows)"); }
        var timeout = step.Duration("timeout", DefaultTimeout, doc: "Longest the step's inputs may take to be processed.");
        step.Done();
        return new CaseStep(number, step.Line, inputs, expect, timeout);
    }

    private static CaseInput? Input(string folder, ConfigMap input)
    {
        if (input.Describing)
        {
            // A description reads every kind of input, so the reference shows each one's keys.
            foreach (var (kindKey, doc) in InputKinds) { input.Declare(kindKey, "path", null, doc); }
            input.String("pipeline", doc: "files, http, pages: the pipeline fed (optional when the recipe has one pipeline with that source).");
            input.String("tenant", doc: "http (required there): the tenant whose token the body is posted with.");
            input.String("content_type", doc: "http: the body's content type (default application/json; .ndjson and .jsonl files: application/x-ndjson).");
            input.String("stream", doc: "http: the stream posted to (/v1/streams/<stream>/events); default the source's.");
            input.String("object", doc: "pages: the object whose query gets the pages; default the source's.");
            return null;
        }

        var kinds = new[] { ("files", CaseInputKind.Files), ("http", CaseInputKind.Http), ("sql", CaseInputKind.Sql), ("pages", CaseInputKind.Pages) }
            .Where(k => input.Has(k.Item1)).ToList();
        if (kinds.Count != 1)
        {
            input.Error("files", "an input is one of files: <path>, http: <path>, sql: <path> or pages: <path>");
            input.Done();
            return null;
        }

        var (key, kind) = kinds[0];
        var path = Existing(folder, input, key, directoryAllowed: kind is CaseInputKind.Files or CaseInputKind.Pages);
        var read = new CaseInput(kind, path ?? "", input.Line, kind == CaseInputKind.Sql ? null : input.String("pipeline"))
        {
            Tenant = kind == CaseInputKind.Http ? input.RequiredString("tenant") : null,
            ContentType = kind == CaseInputKind.Http ? input.String("content_type") : null,
            Stream = kind == CaseInputKind.Http ? input.String("stream") : null,
            Object = kind == CaseInputKind.Pages ? input.String("object") : null,
        };
        input.Done();
        return path is null ? null : read;
    }

    private static readonly (string Key, string Doc)[] InputKinds =
    [
        ("files", "A file, or every file under a folder (in name order), copied into the incoming folder of the pipeline's files source."),
        ("http", "A file whose bytes are posted to the pipeline's http source with a writer token of tenant."),
        ("sql", "A SQL file run in one transaction on the recipe's PostgreSQL before the sources read: the rows a postgres_cdc or postgres_pull source then picks up."),
        ("pages", "A .json file, or every .json file under a folder (in name order), one page each, served to the pipeline's salesforce source by a Salesforce-style API on 127.0.0.1."),
    ];

    private static CaseExpectation? Expectation(string folder, ConfigMap e)
    {
        OutputPlace place = OutputPlace.Lake;
        if (e.Describing)
        {
            e.String("table", doc: "A lake table, zone.table (or give target).");
            e.String("target", doc: $"Another output: {Targets}.");
        }

        string? table = null;
        if (e.Has("table") == e.Has("target"))
        {
            e.Error("table", $"an expectation names either table: zone.table (the lake) or target: {Targets}");
        }
        else if (e.String("table") is { } lake)
        {
            table = lake;
        }
        else if (e.String("target") is "dead_letters")
        {
            place = OutputPlace.DeadLetters;
            table = "dead_letters";
        }
        else if (e.String("target") is { } target)
        {
            var colon = target.IndexOf(':', StringComparison.Ordinal);
            var tech = colon > 0 ? target[..colon] : "";
            place = tech switch
            {
                "postgres" => OutputPlace.Postgres,
                "clickhouse" => OutputPlace.ClickHouse,
                "redis" => OutputPlace.Redis,
                "http" => OutputPlace.Http,
                _ => OutputPlace.Lake,
            };
            if (place == OutputPlace.Lake)
            {
                e.Error("target", $"'{target}' is not one of {Targets} (a lake table is table: zone.table)");
            }
            else
            {
                table = target[(colon + 1)..];
            }

            if (place == OutputPlace.Http && table is not null && !CaptureServer.IsVariable(table))
            {
                e.Error("target", $"'{target}': after http: comes the environment variable the recipe names the API's URL with (http:ENGAGEMENT_API_URL)");
                table = null;
            }

            if (place == OutputPlace.Redis && table is { Length: 0 })
            {
                e.Error("target", "redis: needs a key pattern (redis:views:*), relative to the case's key prefix");
                table = null;
            }
        }

        if (table is not null && place is OutputPlace.Lake or OutputPlace.Postgres or OutputPlace.ClickHouse && table.Split('.') is not [{ Length: > 0 }, { Length: > 0 }])
        {
            e.Error(e.Has("table") ? "table" : "target", $"'{table}' is not <schema>.<table>");
            table = null;
        }

        var rows = Existing(folder, e, "rows", directoryAllowed: false, doc: "The expected rows, a .csv or .jsonl file of the case (cells as text; an empty cell is NULL).");
        if (rows is not null && !ExpectedRows.IsKnownFormat(rows))
        {
            e.Error("rows", $"'{e.String("rows")}': expected rows are a .csv or .jsonl file");
            rows = null;
        }

        var read = new CaseExpectation(place, table ?? "", rows ?? "", e.Line)
        {
            Columns = e.StringList("columns", doc: "The output's columns compared (default: those of the expected rows)."),
            Key = e.StringList("key", doc: "Columns that name a row, so a difference shows as a changed row rather than one missing and one extra."),
            Ignore = e.StringList("ignore", doc: "Columns left out of this comparison (beside the case's volatile ones)."),
        };
        e.Done();
        return table is null || rows is null ? null : read;
    }

    private const string Targets = "postgres:schema.table | clickhouse:database.table | redis:key-pattern | http:URL_VARIABLE | dead_letters";

    /// <summary>The full path of a file the case names, or null with an error naming the key, when it is missing.</summary>
    private static string? Existing(string folder, ConfigMap map, string key, bool directoryAllowed, string? doc = null)
    {
        var relative = map.String(key, required: true, doc: doc);
        if (relative is null) { return null; }
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, relative));
        if (File.Exists(full) || (directoryAllowed && Directory.Exists(full))) { return full; }
        map.Error(key, $"no {(directoryAllowed ? "file or folder" : "file")} '{relative}' in the case folder {TestCase.Display(folder)}");
        return null;
    }
}
