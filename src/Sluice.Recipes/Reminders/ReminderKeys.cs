using System.Security.Cryptography;
using Sluice.Core;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// Finds the master key: the configured environment variable (base64 or hex of 32 bytes), else the key file in the
/// data folder, created on first use. Creation is a write to a temporary file and a rename that fails if another
/// process got there first, so concurrent first starts agree on one key.
/// </summary>
public static class ReminderKeys
{
    public static FieldProtector Load(ReminderStoreOptions options, DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        if (Environment.GetEnvironmentVariable(options.KeyEnv) is { Length: > 0 } text)
        {
            return new FieldProtector(Parse(text.Trim(), $"${options.KeyEnv}"));
        }

        var path = Path.Combine(data.Root, options.KeyFile);
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var temp = $"{path}.{Environment.ProcessId}.tmp";
            Core.IO.PrivateFiles.Write(temp, System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n"));
            try
            {
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException)
            {
                File.Delete(temp);
            }
        }

        return new FieldProtector(Parse(File.ReadAllText(path).Trim(), path));
    }

    private static byte[] Parse(string text, string where)
    {
        try
        {
            var bytes = text.Length == 64 && text.All(Uri.IsHexDigit) ? Convert.FromHexString(text) : Convert.FromBase64String(text);
            if (bytes.Length == 32) { return bytes; }
        }
        catch (FormatException)
        {
            // Reported below with the expected format.
        }

        throw new SluiceException($"the reminder key in {where} must be 32 bytes, written as base64 (44 characters) or hex (64 characters); generate one with: openssl rand -base64 32");
    }
}
