using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Transforms.Dedup;

/// <summary>
/// Options of the <c>dedup</c> step: <c>key</c> (the columns that make a row a repeat), <c>window</c> (how long a key is
/// remembered after it was first seen, default 24h), <c>max_keys</c> (the memory bound, default 1,000,000: about 40 bytes
/// a key), <c>persist</c> (keep the window in the metadata store across restarts, default true), <c>tables</c>.
/// </summary>
public sealed class DedupOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly DedupOptions Default = OptionDefaults.Of<DedupOptions>();

    public required TableSelection Tables { get; init; }

    public required IReadOnlyList<string> Key { get; init; }

    public TimeSpan Window { get; init; } = TimeSpan.FromHours(24);

    public int MaxKeys { get; init; } = 1_000_000;

    public bool Persist { get; init; } = true;

    /// <summary>The step's identity: its dead-letter source, also the name its keys are kept under.</summary>
    public required string Step { get; init; }

    public static DedupOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        var key = map.StringList("key", doc: "The columns that make a row a repeat (required).");
        if (key.Count == 0) { map.Error("key", "dedup: missing required field: the columns that make a row a repeat"); }
        var window = map.Duration("window", Default.Window, doc: "How long a key is remembered after it was first seen.");
        if (window <= TimeSpan.Zero) { map.Error("window", "dedup: must be longer than 0"); }
        return new DedupOptions
        {
            Tables = TableSelection.Parse(map),
            Key = key,
            Window = window,
            MaxKeys = map.Int("max_keys", Default.MaxKeys, min: 1, max: 100_000_000, doc: "Keys remembered at most (the memory bound: about 40 bytes a key)."),
            Persist = map.Bool("persist", Default.Persist, doc: "Keep the window in the metadata store across restarts."),
            Step = StepLetters.SourceOf(recipe, map, "dedup"),
        };
    }
}
