using Sluice.Core.Config;

namespace Sluice.Core.Recipes;

/// <summary>Which pipeline a <c>source:</c> block belongs to, for sources that key their state by it.</summary>
public static class SourcePipeline
{
    /// <summary>The pipeline of a <c>pipelines.&lt;name&gt;.source</c> block, or <paramref name="fallback"/> elsewhere.</summary>
    public static string NameOf(ConfigMap source, string fallback)
    {
        ArgumentNullException.ThrowIfNull(source);
        var path = source.KeyPath;
        return path.StartsWith("pipelines.", StringComparison.Ordinal) && path.EndsWith(".source", StringComparison.Ordinal)
            ? path["pipelines.".Length..^".source".Length]
            : fallback;
    }
}
