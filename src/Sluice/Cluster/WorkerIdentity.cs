using System.Text;
using System.Text.RegularExpressions;
using Sluice.Core;

namespace Sluice.Cluster;

/// <summary>
/// A worker's stable id in its cluster: <c>SLUICE_WORKER_ID</c>, else the host's name and a hash of the data folder's
/// full path, so a worker started again on the same folder is the same worker (its sink checkpoints and its registry
/// row are its own) and two workers on one machine differ by their folders.
/// </summary>
public static partial class WorkerIdentity
{
    public const string Variable = "SLUICE_WORKER_ID";

    /// <summary>The id of a worker on <paramref name="data"/>; a <c>SLUICE_WORKER_ID</c> that is no id throws, naming the variable.</summary>
    public static string Of(DataDirectory data, Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(variable);
        if (variable(Variable) is { Length: > 0 } id)
        {
            return Id().IsMatch(id) ? id
                : throw new SluiceException($"{Variable}: '{id}' is not a worker id: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
        }

        var folder = Convert.ToHexStringLower(System.IO.Hashing.XxHash32.Hash(Encoding.UTF8.GetBytes(Path.GetFullPath(data.Root))));
        var host = string.Concat(Environment.MachineName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '-'));
        return $"{(host.Length > 0 ? host : "host")}-{folder}";
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex Id();
}
