using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Sluice.Core.Config;

/// <summary>
/// A YAML mapping being read into an options class. Every getter records the keys it knows, type errors go to
/// <see cref="ConfigErrors"/> with file, line and key, and <see cref="Done"/> reports any key nobody asked for.
/// </summary>
public sealed class ConfigMap
{
    private readonly YamlMappingNode _node;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    /// <summary>Set while a component is being described for the reference: every getter declares its key here.</summary>
    private readonly OptionLog? _log;

    /// <summary>The key path under the described component (<c>retry.max_attempts</c>), without the recipe's own path.</summary>
    private readonly string _docPath;

    public ConfigMap(string file, YamlMappingNode node, ConfigErrors errors, string path = "")
        : this(file, node, errors, path, null, "")
    {
    }

    private ConfigMap(string file, YamlMappingNode node, ConfigErrors errors, string path, OptionLog? log, string docPath)
    {
        File = file;
        _node = node;
        Errors = errors;
        KeyPath = path;
        _log = log;
        _docPath = docPath;
    }

    /// <summary>
    /// An empty mapping that records what a component reads from it into <paramref name="log"/>: each getter's key,
    /// type, default, range and doc. Nested mappings and lists are described too (<c>key.x</c>, <c>key[].x</c>).
    /// </summary>
    public static ConfigMap Describe(OptionLog log) => new("(reference)", new YamlMappingNode(), new ConfigErrors(), "", log, "");

    /// <summary>Whether this map describes a component rather than reading a recipe (a parser may then show a branch it would take for some value).</summary>
    public bool Describing => _log is not null;

    /// <summary>Declares an option read by a helper outside this class (a size, a server URL), with its own type and default text.</summary>
    public void Declare(string key, string type, string? fallback, string? doc, string? allowed = null, bool required = false) =>
        _log?.Add(new OptionDoc(DocKey(key), type, fallback, allowed, required, doc));

    private string DocKey(string key) => _docPath.Length == 0 ? key : $"{_docPath}.{key}";

    private static string? Range<T>(T min, T max, T lowest, T highest) where T : IComparable<T> =>
        (min.CompareTo(lowest) == 0, max.CompareTo(highest) == 0) switch
        {
            (true, true) => null,
            (false, true) => $"at least {OptionDoc.Format(min)}",
            (true, false) => $"at most {OptionDoc.Format(max)}",
            _ => $"{OptionDoc.Format(min)} to {OptionDoc.Format(max)}",
        };

    public string File { get; }

    public ConfigErrors Errors { get; }

    public string KeyPath { get; }

    public int Line => (int)_node.Start.Line;

    public IEnumerable<string> Keys => _node.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "");

    public static ConfigMap? Load(string file, ConfigErrors errors)
    {
        using var reader = new StreamReader(file);
        return Load(reader, Path.GetRelativePath(Directory.GetCurrentDirectory(), file), errors);
    }

    /// <summary>Reads YAML text; <paramref name="display"/> is the file name errors will show.</summary>
    public static ConfigMap? Parse(string yamlText, string display, ConfigErrors errors)
    {
        using var reader = new StringReader(yamlText);
        return Load(reader, display, errors);
    }

    private static ConfigMap? Load(TextReader reader, string display, ConfigErrors errors)
    {
        try
        {
            var yaml = new YamlStream();
            yaml.Load(reader);

            if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            {
                errors.Add(display, 1, "(file)", "expected a YAML mapping at the top level");
                return null;
            }

            return new ConfigMap(display, root, errors);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            errors.Add(display, (int)e.Start.Line, "(file)", $"not valid YAML: {e.InnerException?.Message ?? e.Message}");
            return null;
        }
    }

    public bool Has(string key)
    {
        _log?.Seen(DocKey(key));
        return Find(key) is not null;
    }

    /// <summary>Whether the value under <paramref name="key"/> is a mapping (a key whose value may be written short or long).</summary>
    public bool IsMapping(string key) => _node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlMappingNode;

    public string? String(string key, string? fallback = null, bool required = false, string? doc = null)
    {
        Declare(key, "text", fallback, doc, required: required);
        var node = Find(key);
        if (node is null)
        {
            if (required) { Missing(key); }
            return fallback;
        }

        if (node is not YamlScalarNode scalar)
        {
            Error(node, key, "expected a text value");
            return fallback;
        }

        return scalar.Value;
    }

    public string RequiredString(string key, string? doc = null) => String(key, null, required: true, doc: doc) ?? "";

    public int Int(string key, int fallback, int min = int.MinValue, int max = int.MaxValue, string? doc = null)
    {
        Declare(key, "whole number", OptionDoc.Format(fallback), doc, Range(min, max, int.MinValue, int.MaxValue));
        var node = Find(key);
        if (node is null) { return fallback; }
        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max) { Error(node, key, $"must be between {min} and {max}, got {value}"); return fallback; }
            return value;
        }

        Error(node, key, $"expected a whole number, got '{Text(node)}'");
        return fallback;
    }

    public double Double(string key, double fallback, double min = double.MinValue, double max = double.MaxValue, string? doc = null)
    {
        Declare(key, "number", OptionDoc.Format(fallback), doc, Range(min, max, double.MinValue, double.MaxValue));
        var node = Find(key);
        if (node is null) { return fallback; }
        if (node is YamlScalarNode { Value: { } text } && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max) { Error(node, key, $"must be between {min} and {max}, got {value}"); return fallback; }
            return value;
        }

        Error(node, key, $"expected a number, got '{Text(node)}'");
        return fallback;
    }

    public bool Bool(string key, bool fallback, string? doc = null)
    {
        Declare(key, "true or false", OptionDoc.Format(fallback), doc);
        var node = Find(key);
        if (node is null) { return fallback; }
        if (node is YamlScalarNode { Value: { } text } && bool.TryParse(text, out var value)) { return value; }
        Error(node, key, $"expected true or false, got '{Text(node)}'");
        return fallback;
    }

    /// <summary>A duration written as <c>500ms</c>, <c>2s</c>, <c>5m</c>, <c>1h</c>, <c>30d</c> or ISO-8601 (<c>P30D</c>, <c>PT5M</c>).</summary>
    public TimeSpan Duration(string key, TimeSpan fallback, string? doc = null)
    {
        Declare(key, "duration", OptionDoc.FormatDuration(fallback), doc);
        var node = Find(key);
        if (node is null) { return fallback; }
        if (node is YamlScalarNode { Value: { } text } && Durations.TryParse(text, out var value)) { return value; }
        Error(node, key, $"expected a duration such as 500ms, 2s, 5m, 1h, 30d or P30D, got '{Text(node)}'");
        return fallback;
    }

    public T Enum<T>(string key, T fallback, string? doc = null) where T : struct, System.Enum
    {
        Declare(key, "one of", Snake(fallback.ToString()), doc, string.Join(", ", System.Enum.GetNames<T>().Select(Snake)));
        var node = Find(key);
        if (node is null) { return fallback; }
        var text = Text(node).Replace("_", "", StringComparison.Ordinal);
        if (System.Enum.TryParse<T>(text, ignoreCase: true, out var value) && !int.TryParse(text, out _)) { return value; }
        Error(node, key, $"expected one of {string.Join(", ", System.Enum.GetNames<T>().Select(Snake))}, got '{Text(node)}'");
        return fallback;
    }

    public ConfigMap? Map(string key, bool required = false, string? doc = null)
    {
        if (_log is not null)
        {
            Declare(key, "mapping", null, doc, required: required);
            return new ConfigMap(File, new YamlMappingNode(), Errors, Join(key), _log, DocKey(key));
        }

        var node = Find(key);
        if (node is null)
        {
            if (required) { Missing(key); }
            return null;
        }

        if (node is not YamlMappingNode map)
        {
            Error(node, key, "expected a mapping (key: value lines)");
            return null;
        }

        return new ConfigMap(File, map, Errors, Join(key));
    }

    /// <summary>A mapping whose keys are names chosen by the user (pipelines, jobs): each value is a mapping.</summary>
    public IEnumerable<(string Name, ConfigMap Map)> NamedMaps(string key, string? doc = null)
    {
        if (_log is not null)
        {
            Declare(key, "mapping of names", null, doc);
            yield return ("<name>", new ConfigMap(File, new YamlMappingNode(), Errors, Join(key), _log, DocKey($"{key}.<name>")));
            yield break;
        }

        var map = Map(key);
        if (map is null) { yield break; }
        foreach (var (k, v) in map._node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            map._known.Add(name);
            if (v is YamlMappingNode child)
            {
                yield return (name, new ConfigMap(File, child, Errors, map.Join(name)));
            }
            else
            {
                Error(v, $"{key}.{name}", "expected a mapping");
            }
        }
    }

    public IEnumerable<ConfigMap> MapList(string key, string? doc = null)
    {
        if (_log is not null)
        {
            Declare(key, "list of mappings", null, doc);
            yield return new ConfigMap(File, new YamlMappingNode(), Errors, Join(key), _log, DocKey($"{key}[]"));
            yield break;
        }

        var node = Find(key);
        if (node is null) { yield break; }
        if (node is not YamlSequenceNode seq)
        {
            Error(node, key, "expected a list");
            yield break;
        }

        var i = 0;
        foreach (var item in seq.Children)
        {
            if (item is YamlMappingNode m) { yield return new ConfigMap(File, m, Errors, Join($"{key}[{i}]")); }
            else { Error(item, $"{key}[{i}]", "expected a mapping"); }
            i++;
        }
    }

    public IReadOnlyList<string> StringList(string key, string? doc = null, IReadOnlyList<string>? fallback = null)
    {
        Declare(key, "list of text", fallback is null ? null : string.Join(", ", fallback), doc);
        var node = Find(key);
        if (node is null) { return fallback ?? []; }
        if (node is YamlScalarNode s) { return [s.Value ?? ""]; }
        if (node is YamlSequenceNode seq && seq.Children.All(c => c is YamlScalarNode))
        {
            return seq.Children.Cast<YamlScalarNode>().Select(c => c.Value ?? "").ToList();
        }

        Error(node, key, "expected a list of text values");
        return [];
    }

    public void Error(string key, string message) => Errors.Add(File, LineOf(key), Join(key), message);

    /// <summary>
    /// Records a problem under a nested key (<c>rename.old</c>: the line of <c>old</c> inside <c>rename:</c>) into
    /// <paramref name="into"/>, which may be another collection than the load's (<c>validate --connect</c> checks again after loading).
    /// </summary>
    public void ErrorAt(ConfigErrors into, string dottedKey, string message)
    {
        ArgumentNullException.ThrowIfNull(into);
        ArgumentNullException.ThrowIfNull(dottedKey);
        var dot = dottedKey.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0 && _node.Children.TryGetValue(new YamlScalarNode(dottedKey[..dot]), out var inner) && inner is YamlMappingNode nested)
        {
            new ConfigMap(File, nested, into, Join(dottedKey[..dot])).ErrorAt(into, dottedKey[(dot + 1)..], message);
            return;
        }

        into.Add(File, LineOf(dottedKey), Join(dottedKey), message);
    }

    /// <summary>Reports every key that no getter asked for.</summary>
    public void Done()
    {
        foreach (var (k, _) in _node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            if (!_known.Contains(name))
            {
                var expected = _known.Count > 0 ? $" (known keys: {string.Join(", ", _known.Order(StringComparer.Ordinal))})" : "";
                var meant = Sluice.Core.Text.Suggestions.Closest(name, _known) is { } m ? $"; did you mean '{m}'?" : "";
                Errors.Add(File, (int)k.Start.Line, Join(name), $"unknown key{meant}{expected}");
            }
        }
    }

    private YamlNode? Find(string key)
    {
        _known.Add(key);
        return _node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;
    }

    private int LineOf(string key) =>
        _node.Children.Keys.FirstOrDefault(k => (k as YamlScalarNode)?.Value == key) is { } found ? (int)found.Start.Line : Line;

    private void Missing(string key) => Errors.Add(File, Line, Join(key), "missing required field");

    private void Error(YamlNode node, string key, string message) => Errors.Add(File, (int)node.Start.Line, Join(key), message);

    private string Join(string key) => KeyPath.Length == 0 ? key : $"{KeyPath}.{key}";

    private static string Text(YamlNode node) => node is YamlScalarNode s ? s.Value ?? "" : node.NodeType.ToString().ToLowerInvariant();

    private static string Snake(string name) => string.Concat(name.Select((c, i) => char.IsUpper(c) && i > 0 ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString()));
}
