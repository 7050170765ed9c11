using System.Globalization;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Lake;

namespace Sluice.Connectors.Lake;

/// <summary>
/// Gives the lake sinks of recovered recipes their checkpoints back (<c>sluice recover</c>). A stream source replays
/// what it still holds (the HTTP landing log from its first segment) when its sinks have no checkpoint; the lake sink
/// skips rows whose position is below its checkpoint, so a checkpoint just past the highest position in the sink's
/// tables makes that replay land only what never landed.
/// </summary>
public static class LakeSinkCheckpointRecovery
{
    /// <summary>One line per lake sink: the checkpoint restored, or why not.</summary>
    public static IReadOnlyList<string> Restore(IEngineServices services, IReadOnlyList<Recipe> recipes)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(recipes);
        var sinks = recipes
            .SelectMany(r => r.Pipelines.SelectMany(p => p.Sinks.OfType<SinkFactory<LakeSinkOptions>>()
                .Select(f => (Key: StreamPipeline.SinkCheckpointKey(r.Name, p.Name, LakeSink.NameOf(f.Options.Zone)), f.Options.Zone, f.Options.PositionColumn, Source: p.Source as IEventEndFinder))))
            .ToList();

        var lines = new List<string>();
        var checkpoints = new CheckpointStore(services.Metadata, services.Time);
        foreach (var zone in sinks.GroupBy(s => s.Zone, StringComparer.Ordinal))
        {
            if (zone.Count() > 1)
            {
                // Positions are per stream: the highest in a shared zone may be another stream's, and would skip events.
                lines.Add($"zone {zone.Key} is written by {string.Join(" and ", zone.Select(s => s.Key))}: their checkpoints are NOT restored (the positions of several streams cannot be told apart); their sources replay what they still hold, which may land some events twice");
                continue;
            }

            var (key, _, column, source) = zone.Single();
            if (checkpoints.Get(key) is { } kept)
            {
                lines.Add($"{key}: checkpoint {kept} kept (the store still had it)");
                continue;
            }

            var inZone = services.Lake.Tables().Where(t => t.Zone == zone.Key).ToList();
            var tables = inZone.Where(t => t.Columns.Any(c => c.Name == column && c.Type == Core.Schema.FieldType.Integer)).ToList();
            if (tables.Count == 0)
            {
                if (inZone.Count > 0)
                {
                    lines.Add($"{key}: no table of zone {zone.Key} has the position column '{column}'; its source replays what it still holds");
                }

                continue;
            }

            var union = string.Join(" UNION ALL ", tables.Select(t => $"SELECT max({LakeQueryEngine.Quote(column)}) AS p FROM {LakeQueryEngine.Quote(t.Zone)}.{LakeQueryEngine.Quote(t.Name)}"));
            var max = services.Query.Query($"SELECT max(p) FROM ({union})").Rows[0][0];
            if (max is null)
            {
                lines.Add($"{key}: the tables of zone {zone.Key} hold no positions; nothing to restore");
                continue;
            }

            // A row's position is where its event starts; the checkpoint is where the source resumes, so it must be where
            // that event ends (the start of the next one), which only the source can tell.
            var last = Convert.ToInt64(max, CultureInfo.InvariantCulture);
            if (source?.EventEnd(services.Data, last) is not { } next)
            {
                lines.Add($"{key}: NOT restored: the source cannot find where the event at {column} {last} ends; its replay may land some events twice");
                continue;
            }

            checkpoints.Set(key, next.ToString(CultureInfo.InvariantCulture));
            lines.Add($"{key}: checkpoint set to {next} (the end of the event at the highest {column}, {last}, in {string.Join(", ", tables.Select(t => t.QualifiedName))}): a replay of the source does not land those events again");
        }

        return lines;
    }
}
