namespace Sluice.Connectors.Files;

/// <summary>
/// Decides when a file in incoming/ is complete: its size and modification time are the same on two looks at least
/// <c>stableAfter</c> apart. A writer that is still appending changes one of them, and is left alone.
/// </summary>
internal sealed class StabilityTracker(TimeSpan stableAfter)
{
    private readonly Dictionary<string, (long Size, DateTime Modified, DateTimeOffset Since)> _seen = new(StringComparer.Ordinal);

    /// <summary>Returns the names that are stable now; <paramref name="waiting"/> counts those still changing or seen once.</summary>
    public List<string> Observe(IEnumerable<FileInfo> files, DateTimeOffset now, out int waiting)
    {
        var stable = new List<string>();
        var present = new HashSet<string>(StringComparer.Ordinal);
        waiting = 0;
        foreach (var f in files)
        {
            present.Add(f.Name);
            long size;
            DateTime modified;
            try
            {
                f.Refresh();
                if (!f.Exists) { continue; }
                size = f.Length;
                modified = f.LastWriteTimeUtc;
            }
            catch (IOException)
            {
                continue;
            }

            if (_seen.TryGetValue(f.Name, out var before) && before.Size == size && before.Modified == modified)
            {
                if (now - before.Since >= stableAfter)
                {
                    stable.Add(f.Name);
                    continue;
                }
            }
            else
            {
                _seen[f.Name] = (size, modified, now);
            }

            waiting++;
        }

        foreach (var gone in _seen.Keys.Where(k => !present.Contains(k)).ToList())
        {
            _seen.Remove(gone);
        }

        stable.Sort(StringComparer.Ordinal);
        return stable;
    }

    public void Forget(string name) => _seen.Remove(name);
}
