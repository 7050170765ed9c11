using Sluice.Core.IO;

namespace Sluice.Connectors.Files;

/// <summary>
/// The four folders of a drop: files arrive in incoming/, are claimed by an atomic rename into processing/, and end in
/// processed/ (after their rows are committed) or failed/ (with <c>&lt;name&gt;.error.json</c> beside them).
/// </summary>
public sealed class DropFolder
{
    private static readonly string[] PartialSuffixes = [".tmp", ".temp", ".part", ".partial", ".crdownload", ".filepart", ".swp", ".writing", ".!sync"];

    public DropFolder(string root)
    {
        Root = root;
        Incoming = Path.Combine(root, "incoming");
        Processing = Path.Combine(root, "processing");
        Processed = Path.Combine(root, "processed");
        Failed = Path.Combine(root, "failed");
    }

    public string Root { get; }

    public string Incoming { get; }

    public string Processing { get; }

    public string Processed { get; }

    public string Failed { get; }

    public void EnsureCreated()
    {
        foreach (var folder in new[] { Incoming, Processing, Processed, Failed })
        {
            Directory.CreateDirectory(folder);
        }
    }

    /// <summary>Names that say "still being written" (<c>x.json.tmp</c>, <c>.x.json</c>, <c>x.json.part</c>) are never claimed.</summary>
    public static bool IsPartialName(string name) =>
        name.StartsWith('.') || name.StartsWith('~') || PartialSuffixes.Any(s => name.EndsWith(s, StringComparison.OrdinalIgnoreCase));

    /// <summary>The files waiting in incoming/; a folder that cannot be read (gone, no permission) is a <see cref="Core.FatalException"/>: nothing can arrive until someone fixes it.</summary>
    public IReadOnlyList<FileInfo> ListIncoming()
    {
        try
        {
            return new DirectoryInfo(Incoming).EnumerateFiles().Where(f => !IsPartialName(f.Name)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new Core.FatalException($"files: the drop folder {Incoming} cannot be read ({e.Message}); check that it exists and that the user running Sluice may read and write it.", e);
        }
    }

    /// <summary>Moves incoming/name to processing/name. False when the file is gone or a file of that name is already being processed.</summary>
    public bool TryClaim(string name, out string claimed)
    {
        claimed = Path.Combine(Processing, name);
        if (File.Exists(claimed))
        {
            return false;
        }

        try
        {
            File.Move(Path.Combine(Incoming, name), claimed, overwrite: false);
            FileSync.Directory(Processing);
            Core.CrashPoint.Reach("files.claimed");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public string MoveToProcessed(string processingPath) => MoveOut(processingPath, Processed);

    /// <summary>What sits beside a failed file: <c>&lt;name&gt;.error.json</c>.</summary>
    public const string ErrorSuffix = ".error.json";

    /// <summary>
    /// Where a failed file of this content goes: its own name, or <c>stem~N.ext</c> when that is taken. A name whose
    /// <c>.error.json</c> alone is there and is about this content is this file's own (a kill came between writing it and
    /// the move) and is taken again, so a redo lands where its dead letter already points.
    /// </summary>
    public string FailedTarget(string name, string contentSha256) =>
        FreeName(Failed, name, target => !File.Exists(target) && ReadRejection(target + ErrorSuffix)?.ContentSha256 == contentSha256);

    /// <summary>Writes the .error.json, then moves the file to <paramref name="target"/> (from <see cref="FailedTarget"/>).</summary>
    public void MoveToFailed(string processingPath, string target, string errorJson)
    {
        File.WriteAllText(target + ErrorSuffix, errorJson);
        File.Move(processingPath, target);
        FileSync.Directory(Failed);
    }

    /// <summary>A failed file's .error.json, or null when it is missing or not readable (a kill while it was written).</summary>
    public static FileRejection? ReadRejection(string errorJsonPath)
    {
        try
        {
            return File.Exists(errorJsonPath) ? FileRejection.FromJson(File.ReadAllText(errorJsonPath)) : null;
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static string MoveOut(string path, string folder)
    {
        var target = FreeName(folder, Path.GetFileName(path));
        File.Move(path, target);
        FileSync.Directory(folder);
        return target;
    }

    /// <summary>The name itself, or <c>stem~N.ext</c> when that is taken, so that nothing already there is overwritten.</summary>
    internal static string FreeName(string folder, string name, Func<string, bool>? ours = null)
    {
        var target = Path.Combine(folder, name);
        var stem = Path.GetFileNameWithoutExtension(name);
        var ext = Path.GetExtension(name);
        for (var n = 1; (File.Exists(target) || File.Exists(target + ErrorSuffix)) && ours?.Invoke(target) != true; n++)
        {
            target = Path.Combine(folder, $"{stem}~{n}{ext}");
        }

        return target;
    }
}
