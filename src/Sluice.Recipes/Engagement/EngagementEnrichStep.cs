using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Transforms.Lookup;

namespace Sluice.Recipes.Engagement;

/// <summary>The <c>engagement_enrich</c> step type.</summary>
public sealed class EngagementEnrichStepType : IStepType
{
    public string Name => "engagement_enrich";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(EngagementEnrichOptions.Parse(options));

    private sealed class Factory(EngagementEnrichOptions options) : IStepFactory, IShapesBatches
    {
        public IBatchStep Create(IEngineServices services) => new EngagementEnrichStep(options);

        public BatchShape Shape(BatchShape input, ShapeProblems problems) => EngagementEnrichShape.Of(options, input, problems);
    }
}

/// <summary>
/// Joins each engagement event with its content row and derives the write-up's metrics:
/// <c>engagement_seconds = duration_ms / 1000.0</c>, <c>engagement_pct = round(engagement_seconds / length_seconds, 2)</c>
/// (half away from zero), each NULL when an input is NULL or the length is 0. An event whose content is unknown keeps
/// NULL content fields and is counted (<see cref="UnknownDimensionRows"/>, metric <c>sluice.enrich.unknown_dimension</c>),
/// never dropped. The output carries every event column (one added while streaming included), the content fields, the
/// two metrics, then the change envelope (<c>_op</c>, <c>_lsn</c>, <c>_seq</c>, ...). Deleted events (only sent under an
/// <c>emit</c> delete policy) and truncate rows are not passed on.
/// </summary>
public sealed class EngagementEnrichStep(EngagementEnrichOptions options) : IBatchStep
{
    public const string SecondsColumn = "engagement_seconds";
    public const string PercentColumn = "engagement_pct";

    private static readonly Meter Meter = new("Sluice.Enrichment");
    private static readonly Counter<long> Unknown = Meter.CreateCounter<long>("sluice.enrich.unknown_dimension", description: "Events whose dimension row was not found");

    private readonly ConditionalWeakTable<TableSchema, Plan> _plans = [];
    private readonly LookupOptions _lookup = options.Lookup();
    private long _unknown;
    private bool _loaded;

    /// <summary>The content dimension, held as the generic <c>lookup</c> step holds its own (TOAST-safe, bounded).</summary>
    public LookupCache Cache { get; } = new(options.Lookup(), options.MaxRows);

    public long UnknownDimensionRows => Interlocked.Read(ref _unknown);

    /// <summary>Sets the copied fields' types and skips the load from Postgres (unit tests fill the cache by <see cref="LookupCache.Apply"/>).</summary>
    internal void Prepare(IReadOnlyList<FieldType> types)
    {
        Cache.Types = types;
        _loaded = true;
    }

    public async ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (!_loaded)
        {
            // Loaded once; a key not held stays unknown (NULL fields, counted) until its row comes in the stream.
            await new LookupTable(_lookup, options.Connection).LoadAsync(Cache, options.MaxRows, ct).ConfigureAwait(false);
            _loaded = true;
        }

        var output = new List<ColumnBatch>();
        foreach (var table in batch.Tables)
        {
            if (table.Schema.Table == options.Dimension)
            {
                Cache.Apply(table);
                output.Add(table);
            }
            else if (table.Schema.Table == options.Facts)
            {
                output.Add(Enrich(table));
            }
            else
            {
                output.Add(table);
            }
        }

        return batch with { Tables = output };
    }

    public ColumnBatch Enrich(ColumnBatch facts)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var plan = _plans.GetValue(facts.Schema, s => new Plan(s, options, Cache.Types));
        var op = facts.Schema.IndexOf(ChangeEnvelope.Op);
        var keep = new List<int>(facts.Count);
        for (var row = 0; row < facts.Count; row++)
        {
            if (op < 0 || facts.Strings(op)[row] is not (ChangeEnvelope.Delete or ChangeEnvelope.Truncate)) { keep.Add(row); }
        }

        var n = keep.Count;
        var columns = new Array[plan.Schema.Fields.Count];
        var verbatim = facts.HasVerbatim ? new string?[]?[columns.Length] : null;
        for (var c = 0; c < plan.FactColumns.Length; c++)
        {
            var source = facts.Columns[plan.FactColumns[c]];
            var text = facts.Verbatim(plan.FactColumns[c]);
            if (n == facts.Count)
            {
                // Nothing dropped: batches are never changed once built, so the column is shared, not copied.
                columns[plan.FactTargets[c]] = source;
                if (text is not null) { verbatim![plan.FactTargets[c]] = text; }
                continue;
            }

            columns[plan.FactTargets[c]] = ColumnArrays.Gather(source, CollectionsMarshal.AsSpan(keep));
            if (text is not null) { verbatim![plan.FactTargets[c]] = (string?[])ColumnArrays.Gather(text, CollectionsMarshal.AsSpan(keep)); }
        }

        var dims = Cache.Types.Select(t => DimensionValues.ColumnArray(t, n)).ToArray();
        var seconds = new double?[n];
        var percent = new double?[n];
        var key = plan.KeyIndex >= 0 ? facts.Columns[plan.KeyIndex] : null;
        var duration = plan.DurationIndex >= 0 ? facts.Columns[plan.DurationIndex] : null;
        var lengthField = options.Fields.ToList().IndexOf(options.Length);
        long unknown = 0;
        for (var i = 0; i < n; i++)
        {
            var row = keep[i];
            var found = LookupCache.KeyText(key?.GetValue(row)) is { } id ? Cache.Find(id) : null;
            if (found is null) { unknown++; }
            else
            {
                for (var f = 0; f < dims.Length; f++) { dims[f].SetValue(found[f], i); }
            }

            var ms = duration is null ? null : ToDouble(duration.GetValue(row));
            seconds[i] = ms / 1000.0;
            var length = found is null ? null : ToDouble(found[lengthField]);
            percent[i] = seconds[i] is { } s && length is { } l && l != 0 ? Math.Round(s / l, 2, MidpointRounding.AwayFromZero) : null;
        }

        for (var f = 0; f < dims.Length; f++) { columns[plan.DimensionTargets[f]] = dims[f]; }
        columns[plan.SecondsTarget] = seconds;
        columns[plan.PercentTarget] = percent;
        if (unknown > 0)
        {
            Interlocked.Add(ref _unknown, unknown);
            Unknown.Add(unknown);
        }

        return new ColumnBatch(plan.Schema, columns, null, n, verbatim);
    }

    private static double? ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        string exact when double.TryParse(exact, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) => d, // a numeric column
        _ => null,
    };

    /// <summary>Where each output column comes from, worked out once per input schema.</summary>
    private sealed class Plan
    {
        public Plan(TableSchema facts, EngagementEnrichOptions options, IReadOnlyList<FieldType> dimensionTypes)
        {
            var fields = new List<FieldSpec>();
            var factColumns = new List<int>();
            var factTargets = new List<int>();
            var trailing = new List<(int Index, FieldSpec Spec)>();
            for (var i = 0; i < facts.Fields.Count; i++)
            {
                var f = facts.Fields[i];
                if (ChangeEnvelope.IsEnvelope(f.Name)) { trailing.Add((i, f)); continue; }
                if (options.Fields.Contains(f.Name, StringComparer.Ordinal) || f.Name is SecondsColumn or PercentColumn) { continue; }
                factColumns.Add(i);
                factTargets.Add(fields.Count);
                fields.Add(f with { Required = false });
            }

            DimensionTargets = new int[options.Fields.Count];
            for (var d = 0; d < options.Fields.Count; d++)
            {
                DimensionTargets[d] = fields.Count;
                fields.Add(new FieldSpec(options.Fields[d], dimensionTypes[d], false));
            }

            SecondsTarget = fields.Count;
            fields.Add(new FieldSpec(SecondsColumn, FieldType.Double, false));
            PercentTarget = fields.Count;
            fields.Add(new FieldSpec(PercentColumn, FieldType.Double, false));
            foreach (var (index, spec) in trailing)
            {
                factColumns.Add(index);
                factTargets.Add(fields.Count);
                fields.Add(spec);
            }

            FactColumns = factColumns.ToArray();
            FactTargets = factTargets.ToArray();
            KeyIndex = facts.IndexOf(options.Key);
            DurationIndex = facts.IndexOf(options.Duration);
            Schema = new TableSchema(options.Output, fields);
        }

        public TableSchema Schema { get; }

        public int[] FactColumns { get; }

        public int[] FactTargets { get; }

        public int[] DimensionTargets { get; }

        public int SecondsTarget { get; }

        public int PercentTarget { get; }

        public int KeyIndex { get; }

        public int DurationIndex { get; }
    }
}
