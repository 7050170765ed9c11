using System.Diagnostics;
using System.Text.Json;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// How <c>sluice status</c> and <c>sluice tap</c> find a running <c>run</c> or <c>demo</c> of the same data folder:
/// <c>&lt;data&gt;/management/&lt;recipe&gt;.json</c> names the process, its management URL and the key its
/// <c>/api/</c> routes ask for. Written (0600, in the 0700 data folder: only the folder's owner reads the key) once the
/// server listens, removed when the run ends. A file left by a process that died names a pid that is gone, which is
/// how a reader tells "not running".
/// </summary>
public sealed record ManagementFile(int Pid, string Url, string Key, string Recipe, DateTime Started)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string Folder(DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Path.Combine(data.Root, "management");
    }

    public static string PathOf(DataDirectory data, string recipe) => Path.Combine(Folder(data), recipe + ".json");

    /// <summary>Replaces the recipe's file at once (a reader never sees half of it).</summary>
    public void Write(DataDirectory data)
    {
        Core.IO.PrivateFiles.CreateFolder(Folder(data));
        var path = PathOf(data, Recipe);
        var temporary = path + ".tmp";
        Core.IO.PrivateFiles.Write(temporary, JsonSerializer.SerializeToUtf8Bytes(this, Json));
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Removes the recipe's file if it is still this process's (a later run of the recipe may have replaced it).</summary>
    public void Remove(DataDirectory data)
    {
        var path = PathOf(data, Recipe);
        if (Read(path) is { } current && current.Pid == Pid && current.Url == Url) { File.Delete(path); }
    }

    /// <summary>Every readable file of the data folder, live or stale (see <see cref="IsAlive"/>).</summary>
    public static IReadOnlyList<ManagementFile> All(DataDirectory data)
    {
        var folder = Folder(data);
        if (!Directory.Exists(folder)) { return []; }
        return Directory.EnumerateFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(Read).OfType<ManagementFile>().ToList();
    }

    /// <summary>Whether the process that wrote the file still runs.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsAlive
    {
        get
        {
            try
            {
                using var process = Process.GetProcessById(Pid);
                return !process.HasExited;
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                return false;
            }
        }
    }

    private static ManagementFile? Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<ManagementFile>(File.ReadAllBytes(path), Json);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            // Being replaced, or not ours: not a running process to talk to.
            return null;
        }
    }
}
