namespace Sluice.IntegrationTests.Docs;

/// <summary>One fenced block of a Markdown page: its language, first content line, lines, and the docs-test marker before it.</summary>
internal sealed record DocBlock(string Page, string Language, int Line, IReadOnlyList<string> Lines, string? SkipReason)
{
    /// <summary>A block a reader types: <c>sh</c>, <c>bash</c> or <c>console</c>.</summary>
    public bool IsCommands => Language is "sh" or "bash" or "console";

    public string Where => $"{Page}:{Line}";
}

/// <summary>One command of a block (continuation lines joined), where it is, and what a console block shows it prints.</summary>
internal sealed record DocCommand(string Text, string Where, IReadOnlyList<string> ShownOutput);

/// <summary>
/// Reads the fenced blocks of a page. A command block may be preceded by <c>&lt;!-- docs-test: skip: why --&gt;</c>
/// (the only marker): the runner then leaves it out and says why; every other command block runs.
/// </summary>
internal static class DocBlocks
{
    private const string SkipMarker = "<!-- docs-test: skip:";

    public static List<DocBlock> Read(string root, string page)
    {
        var lines = File.ReadAllLines(Path.Combine(root, page));
        var blocks = new List<DocBlock>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("```", StringComparison.Ordinal)) { continue; }
            var language = lines[i][3..].Trim();
            var start = i;
            var body = new List<string>();
            for (i++; i < lines.Length && !lines[i].StartsWith("```", StringComparison.Ordinal); i++) { body.Add(lines[i].TrimEnd()); }
            var previous = start > 0 ? lines[start - 1].Trim() : "";
            string? skip = previous.StartsWith(SkipMarker, StringComparison.Ordinal) && previous.EndsWith("-->", StringComparison.Ordinal)
                ? previous[SkipMarker.Length..^3].Trim() : null;
            blocks.Add(new DocBlock(page, language, start + 2, body, skip));
        }

        return blocks;
    }

    /// <summary>
    /// The commands of a block: in <c>sh</c>/<c>bash</c> every line that is not blank or a comment (a line ending in
    /// <c>\</c> continues on the next); in <c>console</c> the lines after <c>$ </c>, each with the lines it shows printed.
    /// </summary>
    public static List<DocCommand> Commands(DocBlock block)
    {
        var commands = new List<DocCommand>();
        var console = block.Language == "console";
        for (var i = 0; i < block.Lines.Count; i++)
        {
            var line = block.Lines[i];
            if (console)
            {
                if (!line.StartsWith("$ ", StringComparison.Ordinal)) { continue; }
                line = line[2..];
            }

            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) { continue; }
            var first = i;
            var text = line;
            while (text.EndsWith('\\') && i + 1 < block.Lines.Count) { text = text[..^1] + " " + block.Lines[++i].Trim(); }
            // A loop or conditional is one command, to its closing done or fi.
            for (var depth = Opens(text); depth > 0 && i + 1 < block.Lines.Count;)
            {
                var next = block.Lines[++i];
                text += "\n" + next;
                depth += Opens(next);
            }

            var shown = new List<string>();
            while (console && i + 1 < block.Lines.Count && !block.Lines[i + 1].StartsWith("$ ", StringComparison.Ordinal)) { shown.Add(block.Lines[++i]); }
            commands.Add(new DocCommand(text, $"{block.Page}:{block.Line + first}", shown));
        }

        return commands;
    }

    private static int Opens(string line)
    {
        var words = line.Trim().Split([' ', ';'], StringSplitOptions.RemoveEmptyEntries);
        return words.Count(w => w is "for" or "while" or "until" or "if") - words.Count(w => w is "done" or "fi");
    }

    /// <summary>Whether a printed line is what the page shows, <c>...</c> standing for any text.</summary>
    public static bool Shows(string shown, IEnumerable<string> printed)
    {
        // "..." also stands for the padding around it, which a table's columns vary with what they hold.
        var pattern = "^" + string.Join(".*", System.Text.RegularExpressions.Regex.Split(shown.TrimEnd(), @"\s*\.\.\.\s*").Select(System.Text.RegularExpressions.Regex.Escape)) + "$";
        return printed.Any(p => System.Text.RegularExpressions.Regex.IsMatch(p.TrimEnd(), pattern));
    }
}
