using Sluice.Alerts.Conditions;

namespace Sluice.Alerts;

/// <summary>How loud a firing alert is: <c>critical</c> also turns <c>/readyz</c> to 503; <c>warning</c> only shows and notifies.</summary>
public enum AlertSeverity
{
    Warning,
    Critical,
}

/// <summary>One declared alert of a recipe (<c>alerts.rules.&lt;name&gt;</c>).</summary>
public sealed record AlertRule(string Recipe, string Name, AlertSeverity Severity, AlertCondition Condition)
{
    public string QualifiedName => $"{Recipe}/{Name}";
}
