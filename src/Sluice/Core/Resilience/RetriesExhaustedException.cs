namespace Sluice.Core.Resilience;

/// <summary>A transient failure that lasted through every attempt: what gave up, after how many attempts, and the last error (inner).</summary>
public sealed class RetriesExhaustedException(string what, int attempts, Exception last)
    : SluiceException($"{what}: gave up after {attempts} attempts: {last?.Message}", last!)
{
    public int Attempts { get; } = attempts;
}
