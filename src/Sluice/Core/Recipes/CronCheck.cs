using Cronos;

namespace Sluice.Core.Recipes;

/// <summary>What is wrong with a cron expression (five fields, UTC), naming the field, or null when it is valid.</summary>
public static class CronCheck
{
    private static readonly (string Name, string Range)[] Fields =
    [
        ("minute", "0-59"), ("hour", "0-23"), ("day-of-month", "1-31"), ("month", "1-12 or JAN-DEC"), ("day-of-week", "0-6 or SUN-SAT"),
    ];

    public static string? Problem(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        if (Parses(expression)) { return null; }
        var parts = expression.Split(' ', '\t').Where(p => p.Length > 0).ToArray();
        if (parts.Length != Fields.Length)
        {
            return $"has {parts.Length} field(s); five are expected: minute hour day-of-month month day-of-week (UTC)";
        }

        // Each field alone, the others '*': the first that does not parse is the wrong one.
        for (var i = 0; i < parts.Length; i++)
        {
            var alone = string.Join(' ', Enumerable.Range(0, parts.Length).Select(j => j == i ? parts[i] : "*"));
            if (!Parses(alone)) { return $"the {Fields[i].Name} field '{parts[i]}' is not valid (field {i + 1}: {Fields[i].Range}, '*', lists a,b, ranges a-b, steps */n)"; }
        }

        return "the fields do not fit together (minute hour day-of-month month day-of-week, UTC)";
    }

    private static bool Parses(string expression)
    {
        try
        {
            CronExpression.Parse(expression, CronFormat.Standard);
            return true;
        }
        catch (CronFormatException)
        {
            return false;
        }
    }
}
