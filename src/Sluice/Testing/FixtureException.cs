namespace Sluice.Testing;

/// <summary>A fixture that cannot be used as written: the message names the file and line, and what is wrong there.</summary>
public sealed class FixtureException(string file, int line, string message)
    : Core.SluiceException($"{file}:{line}: {message}")
{
    public string File { get; } = file;

    public int Line { get; } = line;
}
