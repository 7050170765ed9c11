using Sluice.Core;
using Sluice.Core.Metadata;

namespace Sluice.Models;

/// <summary>
/// Which models job (<c>recipe/job</c>) builds each model table of one warehouse: a data folder's lake, or a PostgreSQL
/// database. Model tables are named by their folder (<c>models/mart/daily_revenue.sql</c> is <c>mart.daily_revenue</c>),
/// so two recipes with a model of the same name would otherwise write one table in turn, each rewinding and replacing
/// the other's rows. As dbt refuses two models of one name, the first job to prepare a warehouse claims its tables and
/// any other job naming one of them is refused before it writes anything.
/// </summary>
public static class ModelTableClaims
{
    /// <summary>The tables of <paramref name="project"/> that <paramref name="owners"/> (table -> scope) gives to another scope, with that scope.</summary>
    public static IReadOnlyList<(string Table, string Owner)> Conflicts(ModelProject project, string scope, IReadOnlyDictionary<string, string> owners)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(owners);
        return project.Models
            .Select(m => (Table: m.Name, Owner: owners.TryGetValue(m.Name, out var o) ? o : scope))
            .Where(c => !string.Equals(c.Owner, scope, StringComparison.Ordinal))
            .ToList();
    }

    /// <summary>Throws when another job owns any of the project's tables in <paramref name="where"/>.</summary>
    public static void ThrowIfTaken(ModelProject project, string scope, IReadOnlyDictionary<string, string> owners, string where)
    {
        var conflicts = Conflicts(project, scope, owners);
        if (conflicts.Count > 0) { throw new SluiceException(Describe(scope, conflicts, where)); }
    }

    /// <summary>The claims of the embedded warehouse: a data folder's lake, or a cluster's shared lake (none before its first models run).</summary>
    public static IReadOnlyDictionary<string, string> LakeOwners(MetadataStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var state = new Embedded.LakeModelState(store, "");
        state.Migrate();
        return state.Owners();
    }

    public static string Describe(string scope, IReadOnlyList<(string Table, string Owner)> conflicts, string where)
    {
        ArgumentNullException.ThrowIfNull(conflicts);
        var tables = string.Join(", ", conflicts.Select(c => $"{c.Table} (built by {c.Owner})"));
        return $"{scope}: model table(s) {tables} already belong to another models job in {where}; two recipes would overwrite " +
            "each other's rows in one table. Give this recipe's models a schema of their own (rename the folder models/<schema>/ " +
            "and the references to it), or run it on another data folder (--data) or PostgreSQL database.";
    }
}
