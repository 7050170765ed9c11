using System.Diagnostics;

namespace Sluice.Core;

/// <summary>
/// A test hook: when the environment variable <c>SLUICE_TEST_CRASH_AT</c> names a point, the process SIGKILLs itself on
/// reaching it, so a test can prove what a kill at exactly that point leaves behind (and that a restart repairs it).
/// Unset, as it always is outside tests, a point costs one comparison.
/// </summary>
public static class CrashPoint
{
    public const string Variable = "SLUICE_TEST_CRASH_AT";

    /// <summary>A failed file's dead letter is recorded; the file is still in processing/ (not yet moved to failed/).</summary>
    public const string FailedFileLettered = "files.failed-file-lettered";

    private static readonly string? Armed = Environment.GetEnvironmentVariable(Variable);

    public static void Reach(string point)
    {
        if (Armed is null || !string.Equals(Armed, point, StringComparison.Ordinal))
        {
            return;
        }

        Console.Error.WriteLine($"{Variable}={point}: killing this process");
        using var self = Process.GetCurrentProcess();
        self.Kill(); // SIGKILL: nothing after this point runs, no finally, no flush.
        Thread.Sleep(Timeout.Infinite);
    }
}
