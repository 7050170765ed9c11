using System.Text.RegularExpressions;

namespace Sluice.Core.Config;

/// <summary>
/// <c>${NAME}</c> and <c>${NAME:-fallback}</c> in option values, read from the environment, so a recipe can name the
/// variable that holds a server address or password instead of spelling the value out.
/// </summary>
public static partial class EnvText
{
    public static string Expand(string text) =>
        Reference().Replace(text, m =>
        {
            var value = Environment.GetEnvironmentVariable(m.Groups["name"].Value);
            return !string.IsNullOrEmpty(value) ? value : m.Groups["fallback"].Success ? m.Groups["fallback"].Value : "";
        });

    /// <summary>
    /// The option's value (expanded), else the environment variable, else the fallback. <paramref name="shown"/> is how
    /// the reference names a fallback that depends on the machine (the OS user).
    /// </summary>
    public static string Resolve(ConfigMap? map, string key, string fallback, string variable, string? doc = null, string? shown = null)
    {
        map?.Declare(key, "text", $"${variable}, else {shown ?? fallback}", doc);
        var configured = map?.String(key);
        if (configured is not null)
        {
            return Expand(configured);
        }

        return Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : fallback;
    }

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(:-(?<fallback>[^}]*))?\}")]
    private static partial Regex Reference();
}
