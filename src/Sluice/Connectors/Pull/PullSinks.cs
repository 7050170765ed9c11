namespace Sluice.Connectors.Pull;

/// <summary>What a pull source's <c>mapping:</c> and a pipeline's <c>sinks:</c> mean together, said at load.</summary>
public static class PullSinks
{
    /// <summary>Null when the combination runs; else why not and what to change.</summary>
    public static string? Problem(string source, bool mapped, bool hasSinks) => (mapped, hasSinks) switch
    {
        (true, true) => $"source '{source}' has mapping:, so it maps its records to attorney events and lands them in the reminder store itself, and takes no sinks; remove mapping: (and store:) to hand its rows to the sinks, or remove sinks:",
        (false, false) => $"source '{source}' without mapping: hands its rows to the pipeline's sinks and needs at least one (for example a lake sink); or give it mapping: to land attorney events in the reminder store",
        _ => null,
    };
}
