using System.Runtime.InteropServices;

namespace Sluice.Core.IO;

/// <summary>
/// fsync for directories, so that a rename (claiming a file, publishing a lake file) survives a power cut, not only a
/// process crash. .NET has no API for it; on Linux a directory opened read-only can be fsynced.
/// </summary>
public static partial class FileSync
{
    public static void Directory(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }

        var fd = Open(path, 0);
        if (fd < 0)
        {
            return;
        }

        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
