namespace Sluice.Core.Config;

/// <summary>One problem in a configuration file, printed as <c>file:line: key: what is wrong</c>.</summary>
public sealed record ConfigError(string File, int Line, string Key, string Message)
{
    public override string ToString() => $"{File}:{Line}: {Key}: {Message}";
}

/// <summary>Thrown when configuration has problems; carries all of them, not just the first.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : SluiceException(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

/// <summary>Collects problems while a configuration is read, so <c>validate</c> can list them all.</summary>
public sealed class ConfigErrors
{
    private readonly List<ConfigError> _errors = [];

    public IReadOnlyList<ConfigError> All => _errors;

    public bool Any => _errors.Count > 0;

    public void Add(string file, int line, string key, string message) => _errors.Add(new ConfigError(file, line, key, message));

    public void ThrowIfAny()
    {
        if (_errors.Count > 0)
        {
            throw new ConfigException(_errors.ToList());
        }
    }
}
