using System.Text.Json;
using Sluice.Core.DeadLetters;

namespace Sluice.Connectors.Files;

/// <summary>
/// The dead letter of a whole failed file: keyed by the recipe and the file's content hash, so recording it again (a
/// redo after a kill) leaves one letter, and recorded before the file moves to failed/, so a failed file always has it.
/// </summary>
internal static class FailedFileLetter
{
    public static string Key(string recipe, string contentSha256) => $"files:{recipe}:failed:{contentSha256}";

    /// <summary>Records (or renews) the letter of a file whose place in failed/ is <paramref name="failedPath"/>.</summary>
    public static void Record(DeadLetterStore letters, string recipe, FileRejection rejection, string failedPath)
    {
        var name = Path.GetFileName(failedPath);
        var position = rejection.Line is null
            ? $"failed/{name}"
            : $"failed/{name}: line {rejection.Line}, record {rejection.Record}" + (rejection.Field is null ? "" : $", field '{rejection.Field}'");
        letters.Add(FilesSource.FileSource(recipe), position, rejection.Reason, JsonSerializer.Serialize(new { failed_file = name }), Key(recipe, rejection.ContentSha256));
    }

    /// <summary>
    /// Files in failed/ whose letter is missing get it (left by a kill between the move and the letter, which earlier
    /// versions wrote in that order). Reads only the small <c>.error.json</c> files: nothing is hashed again.
    /// </summary>
    public static int RecoverMissing(DeadLetterStore letters, DropFolder drop, string recipe)
    {
        var recovered = 0;
        foreach (var errorJson in Directory.EnumerateFiles(drop.Failed, "*" + DropFolder.ErrorSuffix))
        {
            var failed = errorJson[..^DropFolder.ErrorSuffix.Length];
            if (!File.Exists(failed) || DropFolder.ReadRejection(errorJson) is not { } rejection || letters.HasKey(Key(recipe, rejection.ContentSha256)))
            {
                continue;
            }

            Record(letters, recipe, rejection, failed);
            recovered++;
        }

        return recovered;
    }
}
