using System.Diagnostics;
using System.Globalization;

namespace Sluice.Core;

/// <summary>
/// The places between two durable steps where a crash is hardest to recover from (a file claimed, staged, committed
/// but not moved; log bytes written but not fsynced, fsynced but not answered; a sink written but not checkpointed,
/// checkpointed but not acknowledged; a reminder claimed, sent but not recorded). With <c>SLUICE_CRASH_AT=name[:n]</c>
/// in its environment the process SIGKILLs itself the n-th time (default: the first) it reaches that place, so the
/// chaos tests kill at each commit point exactly instead of by timing. Unset, as always outside those tests, a
/// reached point costs one comparison with null.
/// </summary>
public static class CrashPoint
{
    /// <summary>The environment variable that arms a point: <c>name</c> or <c>name:n</c>.</summary>
    public const string Variable = "SLUICE_CRASH_AT";

    /// <summary>A failed file's dead letter is recorded; the file is still in processing/ (not yet moved to failed/).</summary>
    public const string FailedFileLettered = "files.failed-file-lettered";

    private static readonly string? Target;
    private static readonly int At = 1;
    private static int _hits;

    static CrashPoint()
    {
        var setting = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(setting)) { return; }
        var colon = setting.IndexOf(':', StringComparison.Ordinal);
        Target = colon < 0 ? setting.Trim() : setting[..colon].Trim();
        if (colon >= 0) { At = int.Parse(setting[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture); }
    }

    public static void Reach(string name)
    {
        if (Target is null || !string.Equals(name, Target, StringComparison.Ordinal) || Interlocked.Increment(ref _hits) != At)
        {
            return;
        }

        Console.Error.WriteLine($"SLUICE_CRASH_AT: killed at {name} (time {At})");
        Console.Error.Flush();
        using var self = Process.GetCurrentProcess();
        self.Kill();
        Thread.Sleep(Timeout.Infinite);
    }
}
