using System.Globalization;
using Sluice.Core.Metadata;

namespace Sluice.Models;

/// <summary>The latest outcome of one declared test of a model (<c>GET /api/models</c>).</summary>
public sealed record ModelTestResult(string Model, string Test, string Status, string? Message, DateTimeOffset At);

/// <summary>
/// The latest outcome of every model test, per models job (<c>recipe/job</c>), kept in the metadata store whenever the
/// tests run (<c>sluice models test</c>, <c>models build</c>), so the console shows them without running them again.
/// </summary>
public sealed class ModelTestResults(MetadataStore store, TimeProvider time)
{
    public const string Passed = "pass";
    public const string Failed = "fail";
    public const string Error = "error";

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS model_test_results (
            scope TEXT NOT NULL, model TEXT NOT NULL, test TEXT NOT NULL, status TEXT NOT NULL, message TEXT NULL, at TEXT NOT NULL,
            PRIMARY KEY (scope, model, test));
        """,
    ];

    public void Record(string scope, IReadOnlyList<ModelTestOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        store.Migrate("models.test_results", Migrations);
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        var at = time.GetUtcNow().Iso();
        foreach (var o in outcomes)
        {
            var (status, message) = o.Error is not null ? (Error, o.Error)
                : o.Passed ? (Passed, (string?)null)
                : (Failed, string.Create(CultureInfo.InvariantCulture, $"{o.Failures} offending {(o.Test.Kind == ModelTestKind.RowCount ? "count" : "row(s)")} ({o.Model.File}:{o.Test.Line})"));
            c.Execute(
                "INSERT INTO model_test_results(scope, model, test, status, message, at) VALUES ($s, $m, $t, $st, $msg, $at) " +
                "ON CONFLICT(scope, model, test) DO UPDATE SET status = excluded.status, message = excluded.message, at = excluded.at",
                tx, ("$s", scope), ("$m", o.Model.Name), ("$t", o.Test.Describe()), ("$st", status), ("$msg", message), ("$at", at));
        }

        tx.Commit();
    }

    public IReadOnlyList<ModelTestResult> Latest(string scope)
    {
        store.Migrate("models.test_results", Migrations);
        using var c = store.Connect();
        using var cmd = c.Command("SELECT model, test, status, message, at FROM model_test_results WHERE scope = $s", null, ("$s", scope));
        using var r = cmd.ExecuteReader();
        var results = new List<ModelTestResult>();
        while (r.Read())
        {
            results.Add(new ModelTestResult(r.GetString(0), r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), SqliteExtensions.ParseIso(r.GetString(4))));
        }

        return results;
    }
}
