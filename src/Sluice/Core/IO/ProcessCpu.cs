using System.Diagnostics;
using System.Globalization;

namespace Sluice.Core.IO;

/// <summary>
/// CPU time a process has used so far, from <c>/proc/&lt;pid&gt;/stat</c> (utime + stime, all its threads, in clock
/// ticks). Read from outside, so the same reading serves Sluice and the Postgres WAL sender alike.
/// </summary>
public readonly record struct ProcessCpu(long UserTicks, long SystemTicks)
{
    public long Ticks => UserTicks + SystemTicks;

    /// <summary>Parses one <c>/proc/&lt;pid&gt;/stat</c> line.</summary>
    /// <remarks>
    /// The second field, the command name, is in parentheses and may itself hold spaces and parentheses (a Postgres
    /// backend renames itself), so fields are counted from the last ')': after it come state (field 3) onwards, which
    /// puts utime (field 14) and stime (field 15) at positions 11 and 12.
    /// </remarks>
    public static ProcessCpu Parse(string statLine)
    {
        ArgumentNullException.ThrowIfNull(statLine);
        var close = statLine.LastIndexOf(')');
        var fields = close < 0 ? [] : statLine[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 13
            || !long.TryParse(fields[11], NumberStyles.None, CultureInfo.InvariantCulture, out var user)
            || !long.TryParse(fields[12], NumberStyles.None, CultureInfo.InvariantCulture, out var system))
        {
            throw new FormatException($"not a /proc/<pid>/stat line (expected 'pid (comm) state ...' with utime and stime as fields 14 and 15): '{statLine}'");
        }

        return new ProcessCpu(user, system);
    }

    /// <summary>The process's CPU time now; a clear error when it is gone or /proc is not there (not Linux).</summary>
    public static ProcessCpu Read(int pid)
    {
        var path = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat";
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Core.SluiceException($"bench: cannot read the CPU time of process {pid} from {path}: {e.Message}");
        }
    }

    /// <summary>Seconds between two readings of the same process.</summary>
    public static double Seconds(ProcessCpu before, ProcessCpu after) => (after.Ticks - before.Ticks) / TicksPerSecond;

    /// <summary>The kernel's clock ticks per second for /proc times (USER_HZ), as <c>getconf CLK_TCK</c> says; 100 when it cannot.</summary>
    public static double TicksPerSecond => Hz.Value;

    private static readonly Lazy<double> Hz = new(() =>
    {
        try
        {
            using var getconf = Process.Start(new ProcessStartInfo("getconf", "CLK_TCK") { RedirectStandardOutput = true, UseShellExecute = false });
            var text = getconf?.StandardOutput.ReadToEnd().Trim();
            getconf?.WaitForExit();
            return double.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var hz) && hz > 0 ? hz : 100;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No getconf: 100 is USER_HZ on every Linux ABI .NET runs on.
            return 100;
        }
    });
}

/// <summary>The load average from <c>/proc/loadavg</c>, for the record of a shared machine.</summary>
public static class LoadAverage
{
    /// <summary>The 1-minute load average, NaN when unknown.</summary>
    public static double OneMinute()
    {
        try
        {
            return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return double.NaN;
        }
    }
}
