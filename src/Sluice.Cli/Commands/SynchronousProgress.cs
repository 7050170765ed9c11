namespace Sluice.Cli.Commands;

/// <summary>Reports on the caller's thread, so plain progress lines come out in order.</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
