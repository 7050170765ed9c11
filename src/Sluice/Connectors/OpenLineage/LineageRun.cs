namespace Sluice.Connectors.OpenLineage;

/// <summary>A table a run reads or writes, as OpenLineage names it: the namespace of its store and its name there.</summary>
public sealed record LineageDataset(string Namespace, string Name);

/// <summary>One job or model run that has sent its START event; its end event reuses the run id and datasets.</summary>
public sealed record LineageRun(Guid Id, string Job, IReadOnlyList<LineageDataset> Inputs, IReadOnlyList<LineageDataset> Outputs);

/// <summary>How a run ended, as OpenLineage's event types.</summary>
public enum LineageEnd
{
    Complete,
    Fail,
    Abort,
}
