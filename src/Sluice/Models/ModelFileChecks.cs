using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Models;

/// <summary>The checks every part of a model file shares: plain column names, reason codes, relation names.</summary>
internal static partial class ModelFileChecks
{
    /// <summary>Each of <paramref name="names"/> must be a plain column name; a problem is reported under <paramref name="key"/>.</summary>
    public static void PlainColumns(ConfigMap map, string key, IEnumerable<string?> names)
    {
        foreach (var name in names.OfType<string>().Where(n => !SqlText.IsIdentifier(n)))
        {
            map.Error(key, $"'{name}' is not a plain column name (letters, digits, '_')");
        }
    }

    public static string Reason(ConfigMap map, string key, string value)
    {
        if (!ReasonCode().IsMatch(value)) { map.Error(key, $"'{value}' is not a reason code (lower case letters, digits and '_', starting with a letter)"); }
        return value;
    }

    [GeneratedRegex(@"^([A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$", RegexOptions.CultureInvariant)]
    public static partial Regex RelationColumn();

    [GeneratedRegex(@"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", RegexOptions.CultureInvariant)]
    public static partial Regex RelationName();

    [GeneratedRegex(@"^[a-z][a-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex ReasonCode();
}
