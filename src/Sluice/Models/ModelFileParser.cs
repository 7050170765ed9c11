using Sluice.Core.Config;
using Sluice.Models.Rules;
using YamlDotNet.RepresentationModel;

namespace Sluice.Models;

/// <summary>
/// Reads model files. A SQL model may start with a <c>/* ... */</c> comment holding its header as YAML (<c>kind</c>,
/// keys, tests, ...); a clean model is a YAML file of rules. Every problem goes to <see cref="ConfigErrors"/> as
/// <c>file:line: key: what is wrong</c>, with the line of the model file itself.
/// </summary>
public static class ModelFileParser
{
    public static readonly IReadOnlyList<string> KnownPlaceholders = ["as_of"];

    public static ModelDefinition? ParseSql(string path, string name, ConfigErrors errors) => ParseSqlText(Display(path), File.ReadAllText(path), name, errors);

    /// <summary>Parses a SQL model from its text; <paramref name="display"/> names the file in messages.</summary>
    public static ModelDefinition? ParseSqlText(string display, string text, string name, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        ArgumentNullException.ThrowIfNull(text);
        var (header, sql, sqlLine) = SplitHeader(text);
        ConfigMap? map = null;
        if (header is not null)
        {
            map = LoadYaml(display, header, errors);
            if (map is null) { return null; }
        }

        var before = errors.All.Count;
        var kind = map is null ? ModelKind.Table : Kind(map, ModelKind.Table);
        if (kind == ModelKind.Clean)
        {
            map!.Error("kind", "kind clean is written as a YAML file of rules (models/<schema>/<name>.yaml), not as SQL");
        }

        var model = new ModelDefinition { Name = name, Kind = kind, File = display, Sql = sql, SqlLine = sqlLine };
        if (map is not null)
        {
            model = ParseHeader(map, model with { Reads = map.Enum("reads", model.Reads, doc: ReadsDoc) });
            model = ParseKindOptions(map, model);
            map.Done();
        }

        CheckSql(display, sql, kind, errors);
        return errors.All.Count > before ? null : model;
    }

    public static ModelDefinition? ParseClean(string path, string name, ConfigErrors errors) => ParseCleanText(Display(path), File.ReadAllText(path), name, errors);

    /// <summary>Parses a clean model (YAML rules) from its text; <paramref name="display"/> names the file in messages.</summary>
    public static ModelDefinition? ParseCleanText(string display, string text, string name, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var map = LoadYaml(display, text, errors);
        if (map is null) { return null; }
        var before = errors.All.Count;
        var kind = Kind(map, ModelKind.Clean);
        if (kind != ModelKind.Clean)
        {
            map.Error("kind", $"a YAML model is a clean model (kind: clean); write a {kind.ToString().ToLowerInvariant()} model as SQL");
        }

        var spec = CleanSpecParser.Parse(map);
        var model = ParseHeader(map, new ModelDefinition { Name = name, Kind = ModelKind.Clean, File = map.File, Clean = spec });
        map.Done();
        return errors.All.Count > before || spec is null ? null : model;
    }

    /// <summary>Describes a SQL model's header for the reference (docs/reference/models.md): every kind's keys.</summary>
    public static void DescribeSql(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var model = new ModelDefinition { Name = "<schema>.<name>", Kind = Kind(map, ModelKind.Table), File = map.File };
        map.Enum("reads", model.Reads, doc: ReadsDoc);
        ParseKindOptions(map, ParseHeader(map, model));
    }

    /// <summary>Describes a clean model's YAML for the reference.</summary>
    public static void DescribeClean(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        Kind(map, ModelKind.Clean);
        CleanSpecParser.Parse(map);
        ParseHeader(map, new ModelDefinition { Name = "<schema>.<name>", Kind = ModelKind.Clean, File = map.File });
    }

    private const string ReadsDoc = "Which input days a run as of D reads: every day up to D (history: a changed day d makes every D >= d stale), or only D (day: WHERE file_date = {{ as_of }}).";

    private static ModelKind Kind(ConfigMap map, ModelKind fallback) =>
        map.Enum("kind", fallback, doc: "How the result becomes a relation: table (rebuilt by every run), view, incremental (merged by key or date partition), snapshot (SCD2), clean (a YAML file of rules; the default of a .yaml model).");

    /// <summary>The keys every model takes, whatever its kind.</summary>
    private static ModelDefinition ParseHeader(ConfigMap map, ModelDefinition model)
    {
        map.String("description", doc: "What the model holds (for readers; not used by the engine).");
        return model with
        {
            DeclaredDependencies = map.StringList("depends_on", doc: "Models this one depends on beyond those its SQL names (schema.name), so they run first."),
            Tests = ModelTestParser.Parse(map),
            Tags = map.StringList("tags", doc: "Labels to select models by (sluice models run --select tag:<tag>)."),
        };
    }

    /// <summary>Splits a leading <c>/* ... */</c> header from the SQL; the SQL keeps its place (line) in the file.</summary>
    internal static (string? Header, string Sql, int SqlLine) SplitHeader(string text)
    {
        var start = 0;
        while (start < text.Length && char.IsWhiteSpace(text[start])) { start++; }
        if (!text.AsSpan(start).StartsWith("/*"))
        {
            return (null, text, 1);
        }

        var end = text.IndexOf("*/", start + 2, StringComparison.Ordinal);
        if (end < 0)
        {
            return (text[(start + 2)..], "", 1);
        }

        var headerLine = text.AsSpan(0, start).Count('\n') + 1;
        // Blank lines in front keep YAML line numbers equal to the file's.
        var header = new string('\n', headerLine - 1) + text[(start + 2)..end];
        var sqlLine = text.AsSpan(0, end + 2).Count('\n') + 1;
        return (header, new string('\n', sqlLine - 1) + text[(end + 2)..], sqlLine);
    }

    private static ConfigMap? LoadYaml(string display, string yamlText, ConfigErrors errors)
    {
        try
        {
            var yaml = new YamlStream();
            yaml.Load(new StringReader(yamlText));
            if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            {
                errors.Add(display, yamlText.Count(c => c == '\n') + 1, "(header)", "the leading /* */ comment of a model holds its header as YAML key: value lines");
                return null;
            }

            return new ConfigMap(display, root, errors);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            errors.Add(display, (int)e.Start.Line, "(header)", $"not valid YAML: {e.InnerException?.Message ?? e.Message}");
            return null;
        }
    }

    private static ModelDefinition ParseKindOptions(ConfigMap map, ModelDefinition model)
    {
        if (map.Describing)
        {
            // The reference shows every kind's keys: a description reads both.
            IncrementalSpecParser.Parse(map);
            SnapshotSpecParser.Parse(map);
            return model;
        }

        switch (model.Kind)
        {
            case ModelKind.Incremental:
                foreach (var key in SnapshotSpecParser.OwnKeys.Where(map.Has)) { map.Error(key, "only applies to kind snapshot"); }
                return model with { Incremental = IncrementalSpecParser.Parse(map) };
            case ModelKind.Snapshot:
                foreach (var key in IncrementalSpecParser.OwnKeys.Where(map.Has)) { map.Error(key, "only applies to kind incremental"); }
                return model with { Snapshot = SnapshotSpecParser.Parse(map) };
            default:
                foreach (var key in IncrementalSpecParser.OwnKeys.Concat(SnapshotSpecParser.OwnKeys).Append("unique_key").Append("surrogate_key").Append("on_schema_change").Where(map.Has))
                {
                    map.Error(key, $"only applies to kinds incremental and snapshot, not {model.Kind.ToString().ToLowerInvariant()}");
                }

                return model;
        }
    }

    private static void CheckSql(string display, string sql, ModelKind kind, ConfigErrors errors)
    {
        if (kind == ModelKind.Clean) { return; }
        var body = SqlText.Blank(sql);
        // The SQL text keeps its place in the file (blank lines stand for the header), so its first line is counted from 1.
        var firstLine = 1 + body.TakeWhile(char.IsWhiteSpace).Count(c => c == '\n');
        if (body.Trim().Length == 0)
        {
            errors.Add(display, firstLine, "(sql)", "the model has no SQL: write one SELECT (or WITH ... SELECT) after the header");
            return;
        }

        var first = SqlText.FirstWord(sql);
        if (first is not ("SELECT" or "WITH"))
        {
            errors.Add(display, firstLine, "(sql)", $"a model is one SELECT or WITH ... SELECT (the engine writes the table); found '{first}'");
        }

        if (SqlText.HasSecondStatement(sql))
        {
            errors.Add(display, firstLine, "(sql)", "a model is a single statement: remove the ';' in the middle");
        }

        foreach (var p in SqlText.Placeholders(sql).Where(p => !KnownPlaceholders.Contains(p)))
        {
            errors.Add(display, firstLine, "(sql)", $"unknown placeholder {{{{ {p} }}}} (known: {string.Join(", ", KnownPlaceholders.Select(k => $"{{{{ {k} }}}}"))})");
        }
    }

    private static string Display(string path) => Path.GetRelativePath(Directory.GetCurrentDirectory(), path);
}
