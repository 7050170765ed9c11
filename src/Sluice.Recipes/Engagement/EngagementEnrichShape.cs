using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Recipes.Engagement;

/// <summary>
/// What <c>engagement_enrich</c> does to a pipeline's tables, told at load (<see cref="IShapesBatches"/>) so that
/// <c>sluice validate</c> goes on checking the sinks after it: the facts table becomes <c>output</c>, holding the facts'
/// columns, the dimension's fields, the two metrics, then the change envelope (as <see cref="EngagementEnrichStep"/>'s
/// plan builds it); every other table passes as it is.
/// </summary>
internal static class EngagementEnrichShape
{
    public static BatchShape Of(EngagementEnrichOptions options, BatchShape input, ShapeProblems problems)
    {
        if (input.Table(options.Facts) is not { } facts)
        {
            problems.Add("facts", "engagement_enrich", input.MissingTable(options.Facts));
            return input;
        }

        problems.Add("key", "engagement_enrich", facts.Missing(options.Key));
        problems.Add("duration", "engagement_enrich", facts.Missing(options.Duration));
        var dimension = input.Table(options.Dimension);
        if (dimension is not null)
        {
            problems.Add("key", "engagement_enrich", dimension.Missing(options.Key));
            foreach (var field in options.Fields) { problems.Add("fields", "engagement_enrich", dimension.Missing(field)); }
        }

        return input.Edit([options.Facts], table => Enriched(table, options, dimension));
    }

    private static ShapeTable Enriched(ShapeTable facts, EngagementEnrichOptions options, ShapeTable? dimension)
    {
        var columns = facts.Columns
            .Where(c => !ChangeEnvelope.IsEnvelope(c.Name) && !options.Fields.Contains(c.Name, StringComparer.Ordinal) && c.Name is not (EngagementEnrichStep.SecondsColumn or EngagementEnrichStep.PercentColumn))
            .ToList();
        // A field's type is the dimension's column's, known here only when the dimension's table is.
        columns.AddRange(options.Fields.Select(f => new ShapeColumn(f, dimension?.Find(f)?.Type)));
        columns.Add(new ShapeColumn(EngagementEnrichStep.SecondsColumn, FieldType.Double));
        columns.Add(new ShapeColumn(EngagementEnrichStep.PercentColumn, FieldType.Double));
        columns.AddRange(facts.Columns.Where(c => ChangeEnvelope.IsEnvelope(c.Name)));
        return facts with { Name = options.Output, Columns = columns };
    }
}
