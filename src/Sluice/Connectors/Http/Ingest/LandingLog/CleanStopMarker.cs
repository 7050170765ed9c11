using System.Globalization;
using Sluice.Core.IO;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The file <c>clean-stop</c> in a landing log's folder: written and fsynced when the log closes after its last fsync,
/// holding the end offset; removed at open before anything is appended. Present at start means the last stop was clean,
/// so every byte up to that end was fsynced and anything missing or bad is damage, never a torn tail.
/// </summary>
internal static class CleanStopMarker
{
    public const string FileName = "clean-stop";

    /// <summary>Null when there is no marker (an unclean stop, or a new log); the recorded end, or -1 when the marker cannot be read.</summary>
    public static long? Read(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        var text = File.ReadAllText(path).Trim();
        return text.StartsWith("end ", StringComparison.Ordinal) && long.TryParse(text.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var end) ? end : -1;
    }

    public static void Write(string folder, long end)
    {
        var path = Path.Combine(folder, FileName);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            stream.Write(System.Text.Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"end {end}\n")));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
        FileSync.Directory(folder);
    }

    /// <summary>Removed before the first append: from here on a crash is an unclean stop.</summary>
    public static void Remove(string folder)
    {
        File.Delete(Path.Combine(folder, FileName));
        FileSync.Directory(folder);
    }
}
