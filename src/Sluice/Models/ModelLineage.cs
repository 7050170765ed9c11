using Sluice.Connectors.OpenLineage;

namespace Sluice.Models;

/// <summary>
/// The datasets of model runs: sources are lake tables (<c>&lt;namespace&gt;/lake</c>), models are tables of the warehouse
/// they run on (<c>&lt;namespace&gt;/duckdb</c> or <c>&lt;namespace&gt;/postgres</c>).
/// </summary>
public static class ModelLineage
{
    public const string LakeStore = "lake";

    public static LineageRun Start(OpenLineageEmitter lineage, string job, ModelDefinition model, string engine)
    {
        ArgumentNullException.ThrowIfNull(lineage);
        ArgumentNullException.ThrowIfNull(model);
        var inputs = Lake(lineage, model.Sources).Concat(Tables(lineage, model.Dependencies, engine)).ToList();
        return lineage.Start(job, inputs, Tables(lineage, [model.Name], engine));
    }

    public static (IReadOnlyList<LineageDataset> Inputs, IReadOnlyList<LineageDataset> Outputs) Project(OpenLineageEmitter lineage, ModelProject project, string engine)
    {
        ArgumentNullException.ThrowIfNull(project);
        return (Lake(lineage, project.Sources), Tables(lineage, project.Models.Select(m => m.Name), engine));
    }

    private static List<LineageDataset> Lake(OpenLineageEmitter lineage, IEnumerable<string> tables) => Tables(lineage, tables, LakeStore);

    private static List<LineageDataset> Tables(OpenLineageEmitter lineage, IEnumerable<string> tables, string store) =>
        tables.Select(t => new LineageDataset(lineage.DatasetNamespace(store), t)).ToList();
}
