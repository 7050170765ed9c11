using System.Globalization;
using System.Text;
using Sluice.Lake;
using Sluice.Models;

namespace Sluice.Cli;

/// <summary>Test outcomes as people read them: one line per test, and for a failure the model, column, file:line and example rows.</summary>
public static class ModelTestReport
{
    public static string Format(IReadOnlyList<ModelTestOutcome> outcomes)
    {
        var sb = new StringBuilder();
        foreach (var o in outcomes)
        {
            var status = o.Error is not null ? "ERROR" : o.Passed ? "pass" : "FAIL";
            sb.Append(CultureInfo.InvariantCulture, $"{status,-5} {o.Model.Name}: {o.Test.Describe()}");
            if (o.Error is not null) { sb.Append(CultureInfo.InvariantCulture, $": {o.Error}"); }
            else if (!o.Passed)
            {
                sb.Append(o.Test.Kind == ModelTestKind.RowCount
                    ? $": {o.Examples.Rows[0][0]} rows ({o.Model.File}:{o.Test.Line})"
                    : $": {o.Failures} offending {(o.Test.Kind is ModelTestKind.NotNull ? "rows" : "values")} in column {string.Join(", ", o.Test.Columns)} ({o.Model.File}:{o.Test.Line}); for example:");
            }

            sb.Append('\n');
            if (!o.Passed && o.Error is null && o.Test.Kind != ModelTestKind.RowCount)
            {
                foreach (var line in QueryResultFormatter.Format(o.Examples, QueryFormat.Table).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    sb.Append("      ").Append(line).Append('\n');
                }
            }
        }

        var failed = outcomes.Count(o => !o.Passed);
        sb.Append(CultureInfo.InvariantCulture, $"{outcomes.Count - failed} passed, {failed} failed\n");
        return sb.ToString();
    }
}
