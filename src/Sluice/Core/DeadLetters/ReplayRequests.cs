using System.Globalization;

namespace Sluice.Core.DeadLetters;

/// <summary>
/// Replays handed to the process that runs a recipe. Some of what a replay writes belongs to that process alone (a
/// stream's landing log), so <c>sluice dlq replay</c> beside a running <c>run</c> or <c>demo</c> leaves one request
/// file per letter in <c>&lt;data&gt;/requests/replay/&lt;recipe&gt;/</c>; the running host replays it and leaves the
/// outcome beside it, which the command reads and removes. Files are written whole (temporary name, then rename).
/// </summary>
public sealed class ReplayRequests
{
    private const string RequestSuffix = ".request";
    private const string OutcomeSuffix = ".done";
    private const string Replayed = "replayed";
    private readonly string _folder;

    public ReplayRequests(DataDirectory data, string recipe)
    {
        ArgumentNullException.ThrowIfNull(data);
        _folder = Path.Combine(data.Root, "requests", "replay", recipe);
    }

    public void Submit(long id) => WriteWhole(File(id, RequestSuffix), "");

    /// <summary>Ids waiting for the running host, oldest letter first.</summary>
    public IReadOnlyList<long> Pending()
    {
        if (!Directory.Exists(_folder))
        {
            return [];
        }

        return Directory.EnumerateFiles(_folder, "*" + RequestSuffix)
            .Select(f => long.TryParse(Path.GetFileName(f)[..^RequestSuffix.Length], NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : -1)
            .Where(id => id >= 0).Order().ToList();
    }

    /// <summary>Records the outcome (null: replayed) and retires the request.</summary>
    public void Complete(long id, string? error)
    {
        WriteWhole(File(id, OutcomeSuffix), error is null ? Replayed : "failed\n" + error);
        System.IO.File.Delete(File(id, RequestSuffix));
    }

    /// <summary>The outcome, once the host has written it: (true, null) replayed, (true, why) still failing.</summary>
    public (bool Done, string? Error) TakeOutcome(long id)
    {
        var path = File(id, OutcomeSuffix);
        if (!System.IO.File.Exists(path))
        {
            return (false, null);
        }

        var text = System.IO.File.ReadAllText(path);
        System.IO.File.Delete(path);
        return (true, text == Replayed ? null : text[(text.IndexOf('\n', StringComparison.Ordinal) + 1)..]);
    }

    /// <summary>Takes back a request nobody served; false when the host has already taken it.</summary>
    public bool Withdraw(long id)
    {
        var path = File(id, RequestSuffix);
        if (!System.IO.File.Exists(path))
        {
            return false;
        }

        System.IO.File.Delete(path);
        return true;
    }

    private string File(long id, string suffix) => Path.Combine(_folder, id.ToString(CultureInfo.InvariantCulture) + suffix);

    private void WriteWhole(string path, string text)
    {
        Directory.CreateDirectory(_folder);
        var temporary = path + ".tmp";
        System.IO.File.WriteAllText(temporary, text);
        System.IO.File.Move(temporary, path, overwrite: true);
    }
}
