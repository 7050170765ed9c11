using System.Collections;
using System.Reflection;
using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Tests.Core;

/// <summary>
/// A default is written once, in the options class's property initialiser, and its parser falls back to the class's
/// <c>Default</c> instance: every options class with initialisers has one, and every default its parser declares (what
/// the reference shows, and what a recipe that leaves the key out gets) equals the property's initial value.
/// </summary>
public sealed class OptionDefaultsTests
{
    private static readonly Assembly[] Assemblies = [typeof(ConfigMap).Assembly, typeof(Sluice.Recipes.RecipeComponents).Assembly];

    /// <summary>Every type with a static <c>Parse(ConfigMap, ...)</c> that builds an object with a parameterless constructor (property initialisers) keeps a <c>Default</c> to fall back to.</summary>
    [Fact]
    public void Every_options_class_with_initialisers_parses_with_its_Default()
    {
        var missing = Assemblies.SelectMany(a => a.GetTypes())
            .Where(t => !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null && ParseMethod(t) is { } parse && parse.ReturnType.IsAssignableFrom(t))
            .Where(t => DefaultField(t) is null && HasInitialisers(t))
            .Select(t => t.FullName)
            .ToList();
        missing.ShouldBeEmpty($"options classes whose parser repeats their defaults instead of `private static readonly X Default = new();`: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Every_declared_default_equals_the_property_initialiser()
    {
        var compared = 0;
        var problems = new List<string>();
        foreach (var (owner, field) in Assemblies.SelectMany(a => a.GetTypes()).Select(t => (t, DefaultField(t))).Where(p => p.Item2 is not null))
        {
            var parse = ParseMethod(owner);
            if (parse is null) { problems.Add($"{owner.Name}: has a Default but no static Parse(ConfigMap, ...)"); continue; }
            var defaults = field!.GetValue(null)!;
            var log = new OptionLog();
            parse.Invoke(null, [ConfigMap.Describe(log), .. parse.GetParameters().Skip(1).Select(p => Argument(p.ParameterType))]);
            foreach (var option in log.Options.Where(o => o.Default is not null && !Computed(o.Default)))
            {
                if (Property(defaults.GetType(), option.Key) is not { } property || !Simple(property)) { continue; }
                var initial = Shown(property.GetValue(defaults), option);
                compared++;
                if (!Same(initial, Declared(option.Default!), property.PropertyType.IsEnum))
                {
                    problems.Add($"{owner.Name}: '{option.Key}' is declared with default '{option.Default}' but {defaults.GetType().Name}.{property.Name} starts as '{initial}'");
                }
            }
        }

        problems.ShouldBeEmpty(string.Join("\n", problems));
        compared.ShouldBeGreaterThan(150, "the defaults of every options class are compared");
    }

    /// <summary>A model file's defaults (snapshot columns, on_schema_change, strategy, a clean model's columns) are written once too, in the spec records.</summary>
    [Fact]
    public void The_model_file_parsers_fall_back_to_their_specs_Default()
    {
        Type[] parsers = [typeof(Sluice.Models.IncrementalSpecParser), typeof(Sluice.Models.SnapshotSpecParser), typeof(Sluice.Models.Rules.CleanSpecParser), typeof(Sluice.Models.Rules.CleanColumnParser)];
        foreach (var parser in parsers)
        {
            DefaultField(parser).ShouldNotBeNull($"{parser.Name} keeps a Default made by OptionDefaults.Of");
            ParseMethod(parser).ShouldNotBeNull($"{parser.Name} has a static Parse(ConfigMap, ...), so the comparison above covers it");
        }
    }

    /// <summary>Whether a new instance holds anything but nulls, zeros and empties: a default written in an initialiser.</summary>
    private static bool HasInitialisers(Type type)
    {
        var instance = Activator.CreateInstance(type);
        return type.GetProperties().Where(p => p.GetIndexParameters().Length == 0 && p.SetMethod is not null).Select(p => p.GetValue(instance)).Any(v => v switch
        {
            null => false,
            string s => s.Length > 0,
            IEnumerable e => e.Cast<object>().Any(),
            _ => !v.Equals(Activator.CreateInstance(v.GetType())),
        });
    }

    /// <summary>A property a key's value goes into as it is (not a required one, which has no default, nor an object built from several keys).</summary>
    private static bool Simple(PropertyInfo property)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        return property.GetCustomAttribute<System.Runtime.CompilerServices.RequiredMemberAttribute>() is null
            && (type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(TimeSpan) || type == typeof(IReadOnlyList<string>));
    }

    private static FieldInfo? DefaultField(Type type) =>
        type.GetField("Default", BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static) is { IsInitOnly: true } f && f.FieldType.IsClass && f.FieldType != typeof(string) ? f : null;

    private static MethodInfo? ParseMethod(Type type) =>
        type.GetMethods(BindingFlags.Public | BindingFlags.Static).FirstOrDefault(m => m.Name == "Parse" && m.GetParameters() is [{ } first, ..] && first.ParameterType == typeof(ConfigMap));

    private static object? Argument(Type type)
    {
        if (type == typeof(string)) { return "<recipe>"; }
        if (type == typeof(RecipeContext))
        {
            return new RecipeContext("<recipe>", Path.Combine(Path.GetTempPath(), "sluice-defaults", "<recipe>"), new ConfigErrors()) { Components = Sluice.Recipes.RecipeComponents.Create() };
        }

        return type.IsGenericType && type.GetGenericArguments() is [var item] ? Array.CreateInstance(item, 0) : null;
    }

    /// <summary>A default made from the recipe's name (<c>&lt;recipe&gt;</c>) or the machine (<c>the OS user</c>) is computed while parsing, not written in an initialiser.</summary>
    private static bool Computed(string declared) => declared.Contains('<', StringComparison.Ordinal) || Declared(declared).StartsWith("the ", StringComparison.Ordinal);

    /// <summary>An option read from the recipe, else a variable, is declared as <c>$VAR, else fallback</c>.</summary>
    private static string Declared(string declared) =>
        declared.StartsWith('$') && declared.IndexOf(", else ", StringComparison.Ordinal) is var i and >= 0 ? declared[(i + ", else ".Length)..] : declared;

    /// <summary>The property a key reads into: <c>dedup.max_keys</c> is <c>DedupMaxKeys</c> or <c>MaxKeys</c>; <c>group_max_mb</c> may be <c>GroupMaxBytes</c>.</summary>
    private static PropertyInfo? Property(Type type, string key)
    {
        var path = key.Replace("[]", "", StringComparison.Ordinal).Split('.');
        string[] names = [Pascal(string.Join('_', path)), Pascal(path[^1])];
        foreach (var name in names.SelectMany(n => n.EndsWith("Mb", StringComparison.Ordinal) ? [n, n[..^2] + "Bytes"] : new[] { n }))
        {
            if (type.GetProperty(name) is { } p) { return p; }
        }

        return null;
    }

    private static string Pascal(string snake) => string.Concat(snake.Split('_').Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));

    private static string Shown(object? value, OptionDoc option) => value switch
    {
        long bytes when option.Key.EndsWith("_mb", StringComparison.Ordinal) => OptionDoc.Format(bytes >> 20),
        long bytes when option.Type.StartsWith("size", StringComparison.Ordinal) => Sizes.Format(bytes),
        Enum e => e.ToString(),
        IEnumerable list and not string => string.Join(", ", list.Cast<object>()),
        _ => OptionDoc.Format(value) ?? "",
    };

    /// <summary>Enum names are compared as the recipe writes them (<c>child_tables</c>, <c>duckdb</c>), whatever the case and underscores.</summary>
    private static bool Same(string initial, string declared, bool isEnum) =>
        isEnum ? string.Equals(initial.Replace("_", "", StringComparison.Ordinal), declared.Replace("_", "", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase) : initial == declared;
}
