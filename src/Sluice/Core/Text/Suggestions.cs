namespace Sluice.Core.Text;

/// <summary>"Did you mean": the known word nearest to a mistyped one, as the CLI does for mistyped commands.</summary>
public static class Suggestions
{
    /// <summary>The candidate within a few edits of <paramref name="word"/> (about a third of its length, at least one), or null.</summary>
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        ArgumentNullException.ThrowIfNull(word);
        var most = Math.Max(1, word.Length / 3);
        return candidates
            .Select(c => (Candidate: c, Distance: Distance(word.ToLowerInvariant(), c.ToLowerInvariant())))
            .Where(x => x.Distance <= most && x.Distance < word.Length)
            .OrderBy(x => x.Distance).ThenBy(x => x.Candidate, StringComparer.Ordinal)
            .Select(x => x.Candidate).FirstOrDefault();
    }

    /// <summary>Levenshtein distance, with a swap of two neighbours counted as one edit (the commonest typo).</summary>
    public static int Distance(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) { d[i, 0] = i; }
        for (var j = 0; j <= b.Length; j++) { d[0, j] = j; }
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) { d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1); }
            }
        }

        return d[a.Length, b.Length];
    }
}
