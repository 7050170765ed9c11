namespace Sluice.Connectors.OpenLineage;

/// <summary>A job factory that knows the tables its runs read and write, for their OpenLineage events.</summary>
public interface ILineageTables
{
    (IReadOnlyList<LineageDataset> Inputs, IReadOnlyList<LineageDataset> Outputs) LineageTables(OpenLineageEmitter lineage);
}
