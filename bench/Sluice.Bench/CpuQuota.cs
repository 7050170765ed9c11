using System.Globalization;
using Sluice.Core;

namespace Sluice.Bench;

/// <summary>
/// A fixed CPU share for one process: a cgroup of its own with a CFS quota (cgroup v1's cpu controller, else v2's
/// <c>cpu.max</c>). A quota is a ceiling, not a reservation: on a machine busy with other work the process may get less,
/// which is why the benchmark reports the CPU each worker actually used beside its rate.
/// </summary>
internal sealed class CpuQuota : IDisposable
{
    private const int PeriodUs = 100_000;
    private readonly string _folder;

    private CpuQuota(string folder, string how)
    {
        _folder = folder;
        How = how;
    }

    /// <summary>The group's <c>cgroup.procs</c>, for <see cref="Child.Start"/>.</summary>
    public string Procs => Path.Combine(_folder, "cgroup.procs");

    /// <summary>What enforces the share, for the report.</summary>
    public string How { get; }

    public static CpuQuota Create(string name, double cpus)
    {
        var quota = ((int)Math.Round(cpus * PeriodUs)).ToString(CultureInfo.InvariantCulture);
        var period = PeriodUs.ToString(CultureInfo.InvariantCulture);
        string? failure = null;
        try
        {
            const string v1 = "/sys/fs/cgroup/cpu";
            if (File.Exists(Path.Combine(v1, "cpu.cfs_quota_us")))
            {
                var folder = Directory.CreateDirectory(Path.Combine(v1, name)).FullName;
                File.WriteAllText(Path.Combine(folder, "cpu.cfs_period_us"), period);
                File.WriteAllText(Path.Combine(folder, "cpu.cfs_quota_us"), quota);
                return new CpuQuota(folder, $"cgroup v1 CFS quota {quota}/{period} us");
            }

            const string v2 = "/sys/fs/cgroup";
            if (File.Exists(Path.Combine(v2, "cgroup.subtree_control")) && File.ReadAllText(Path.Combine(v2, "cgroup.subtree_control")).Contains("cpu", StringComparison.Ordinal))
            {
                var folder = Directory.CreateDirectory(Path.Combine(v2, name)).FullName;
                File.WriteAllText(Path.Combine(folder, "cpu.max"), $"{quota} {period}");
                return new CpuQuota(folder, $"cgroup v2 cpu.max {quota} {period}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failure = e.Message;
        }

        throw new SluiceException(
            $"bench cluster: cannot give each worker a share of {cpus.ToString(CultureInfo.InvariantCulture)} CPU: no writable cgroup CPU controller " +
            $"(/sys/fs/cgroup/cpu of cgroup v1, or 'cpu' in /sys/fs/cgroup/cgroup.subtree_control of v2){(failure is null ? "" : ": " + failure)}. " +
            "Run as root, or pass --share 0 to run the workers without a quota.");
    }

    /// <summary>Removes the group once its processes are gone (an empty cgroup is all that is left if one lingers).</summary>
    public void Dispose()
    {
        for (var i = 0; i < 50; i++)
        {
            try
            {
                Directory.Delete(_folder);
                return;
            }
            catch (IOException)
            {
                Thread.Sleep(100); // a killed worker leaves the group a moment after the kill
            }
        }
    }
}
