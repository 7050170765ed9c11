using Sluice.Connectors.Files;
using Sluice.Core.Recipes;
using Sluice.Jobs.DailySummary;
using Sluice.Models;

namespace Sluice;

/// <summary>Every built-in source and job type, by the name recipes use. A new connector adds one line here.</summary>
public static class Components
{
    public static ComponentRegistry Create() => new ComponentRegistry()
        .Add(new FilesSourceType())
        .Add(new DailySummaryJobType())
        .Add(new ModelsJobType());
}
