using System.Diagnostics;
using Sluice.Core.IO;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// A small tmpfs mounted on a folder of a test (root only, as CI and the development machines run), so that the disk
/// really fills: ENOSPC from the kernel, for every writer (.NET, SQLite, DuckDB) alike. A ballast file takes all but
/// a little of it; <see cref="Free"/> deletes the ballast, as an operator freeing space would. Unmounted on dispose.
/// </summary>
internal sealed class Tmpfs : IDisposable
{
    private readonly string _ballast;

    private Tmpfs(string folder, string ballast)
    {
        Folder = folder;
        _ballast = ballast;
    }

    public string Folder { get; }

    public static Tmpfs Mount(string folder, int megabytes)
    {
        Directory.CreateDirectory(folder);
        Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", folder);
        return new Tmpfs(folder, Path.Combine(folder, ".ballast"));
    }

    /// <summary>
    /// Fills the file system until only <paramref name="leftKiB"/> KiB are free. The process under test may write at the
    /// same time and take the last bytes first: the ballast then stops where the disk ran out, which is the point.
    /// </summary>
    public void Fill(long leftKiB)
    {
        var free = new DriveInfo(Folder).AvailableFreeSpace;
        var size = Math.Max(0, free - (leftKiB * 1024));
        // Unbuffered, so that a full disk shows in Write (caught below), never later in a flush at Dispose.
        using var stream = new FileStream(_ballast, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0);
        var block = new byte[1 << 20];
        Array.Fill(block, (byte)0x5a);
        try
        {
            for (long written = 0; written < size;)
            {
                var n = (int)Math.Min(block.Length, size - written);
                stream.Write(block, 0, n);
                written += n;
            }
        }
        catch (IOException e) when (DiskFull.Is(e))
        {
            // Full already: what the caller asked for, give or take the bytes the other writer took.
        }
    }

    public long FreeBytes => new DriveInfo(Folder).AvailableFreeSpace;

    public void Free() => File.Delete(_ballast);

    public void Dispose()
    {
        // Lazy: a process under test may still hold a file open; the mount goes as soon as it lets go.
        Run("umount", "-l", Folder);
    }

    private static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) { info.ArgumentList.Add(a); }
        using var p = Process.Start(info)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Trim()}. Disk-full tests mount a tmpfs and need root, as CI runs.");
        }
    }
}
