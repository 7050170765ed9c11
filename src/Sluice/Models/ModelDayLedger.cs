using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Sluice.Models;

/// <summary>
/// Per model and day, the fingerprint of what a run as of that day depends on, compared with the one recorded when it
/// last ran there: its definition (SQL without surrounding white space, kind options, <c>reads</c>; not for snapshots
/// and keyed merges, whose history an edit does not rewrite) and, per input,
/// what it sees of it as of the day. A source or a partition/clean model is seen day by day (the day's files, or the
/// content of its day's partition): the day alone with <c>reads: day</c>, every day up to it otherwise. Any other model
/// is seen as its whole content after its run as of the day. Outputs are content fingerprints, not run ids, so a
/// recomputed day that comes out the same leaves its readers alone. One ledger serves one processing, which asks in
/// ascending day order and, within a day, in run order (an input's day is final before its readers ask for it).
/// </summary>
internal sealed class ModelDayLedger
{
    /// <summary>The output of a model nothing read when it ran: its content was not fingerprinted.</summary>
    public const string Unread = "unread";

    private const string None = "none";

    private readonly ModelProject _project;
    private readonly Dictionary<string, ModelDefinition> _models;
    private readonly Dictionary<string, string> _definitions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedDictionary<DateOnly, string>> _outputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _undatedSources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (DateOnly Before, ulong Sum)> _history = new(StringComparer.Ordinal);
    private readonly SortedDictionary<DateOnly, Dictionary<string, ModelDayRecord>> _records = [];
    private readonly HashSet<DateOnly> _changed = [];
    private readonly HashSet<string> _read;

    public ModelDayLedger(ModelProject project, SourceSnapshot sources, IEnumerable<DayRecord> records)
    {
        _project = project;
        _models = project.Models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        _read = project.Models.SelectMany(m => m.Dependencies).ToHashSet(StringComparer.Ordinal);
        foreach (var m in project.Models) { _definitions[m.Name] = Definition(m); }
        foreach (var (table, _) in sources.Tables)
        {
            var days = new SortedDictionary<DateOnly, string>();
            var undated = new List<string>();
            foreach (var (partition, fingerprint) in sources.PartitionFingerprints(table.QualifiedName).OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (DateOnly.TryParseExact(partition, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)) { days[day] = fingerprint; }
                else { undated.Add($"{partition}={fingerprint}"); }
            }

            _outputs[table.QualifiedName] = days;
            // A source not partitioned by date is read whole by every day.
            if (undated.Count > 0) { _undatedSources[table.QualifiedName] = Hash(undated); }
        }

        foreach (var record in records)
        {
            _records[record.Day] = new Dictionary<string, ModelDayRecord>(record.Models, StringComparer.Ordinal);
            foreach (var (model, r) in record.Models)
            {
                Outputs(model)[record.Day] = r.Output;
                Outputs(RejectsOf(model))[record.Day] = r.Input;
            }
        }
    }

    /// <summary>The days some source has files for.</summary>
    public IEnumerable<DateOnly> SourceDays => _project.Sources.Where(_outputs.ContainsKey).SelectMany(s => _outputs[s].Keys).Distinct();

    /// <summary>Whether another model reads this one (only then is its content fingerprinted after a run).</summary>
    public bool IsRead(ModelDefinition model) => _read.Contains(model.Name);

    public ModelDayRecord? Recorded(ModelDefinition model, DateOnly day) =>
        _records.TryGetValue(day, out var models) && models.TryGetValue(model.Name, out var r) ? r : null;

    /// <summary>The fingerprint of the model's definition and of what it reads as of the day.</summary>
    public string Input(ModelDefinition model, DateOnly day)
    {
        // A model building on its earlier days (snapshot, keyed merge) keeps its history when edited: the new definition
        // applies from the next day it runs as of, with on_schema_change, as dbt does (a backfill rebuilds the past).
        var parts = new List<string> { model.Stateful && model.PartitionColumn is null ? model.Kind.ToString() : _definitions[model.Name] };
        var window = model.Kind == ModelKind.Clean ? InputWindow.Day : model.Reads;
        foreach (var source in model.Sources.Concat(model.Kind == ModelKind.Clean ? [model.Clean!.Source] : []).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            parts.Add($"{source}={(_undatedSources.TryGetValue(source, out var whole) ? whole + ";" : "")}{Dated(source, day, window)}");
        }

        foreach (var dependency in model.Dependencies.Order(StringComparer.Ordinal))
        {
            if (!_models.TryGetValue(dependency, out var input)) { continue; }
            parts.Add($"{dependency}={(input.PartitionColumn is null ? Latest(dependency, day) : Dated(dependency, day, window))}");
        }

        if (SqlText.ReadRelations(model.Sql).Contains(_project.Quarantine, StringComparer.Ordinal))
        {
            // Rejects are not in a clean model's content fingerprint: a reader of the quarantine sees a clean model's inputs.
            foreach (var clean in _project.Models.Where(m => m.Kind == ModelKind.Clean))
            {
                parts.Add($"{_project.Quarantine}/{clean.Name}={Dated(RejectsOf(clean.Name), day, window)}");
            }
        }

        return Hash(parts);
    }

    /// <summary>Whether a whole-table model's content changed after the day (so that as it is now, it is not as of the day).</summary>
    public bool ChangedAfter(ModelDefinition model, DateOnly day)
    {
        var asOf = Latest(model.Name, day);
        return Outputs(model.Name).Any(kv => kv.Key > day && (kv.Value != asOf || kv.Value == Unread));
    }

    /// <summary>Records a run: its input, and what it produced (which its readers see from now on).</summary>
    public void Ran(ModelDefinition model, DateOnly day, string input, string output)
    {
        if (!_records.TryGetValue(day, out var models)) { _records[day] = models = new Dictionary<string, ModelDayRecord>(StringComparer.Ordinal); }
        models[model.Name] = new ModelDayRecord(input, output);
        Outputs(model.Name)[day] = output;
        Outputs(RejectsOf(model.Name))[day] = input;
        _changed.Add(day);
    }

    /// <summary>The day records to save: the days something ran as of, with every current model's record of the day.</summary>
    public IReadOnlyList<DayRecord> ChangedDays(IReadOnlyDictionary<DateOnly, string> sourceFingerprints) =>
        _changed.Order().Select(d => new DayRecord(d, sourceFingerprints.GetValueOrDefault(d, SourceSnapshot.NoFiles), DayStatus.Done)
        {
            Models = _records[d].Where(kv => _models.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
        }).ToList();

    private static string RejectsOf(string model) => model + "#rejects";

    private SortedDictionary<DateOnly, string> Outputs(string relation)
    {
        if (!_outputs.TryGetValue(relation, out var days)) { _outputs[relation] = days = []; }
        return days;
    }

    /// <summary>A whole-table input as of the day: its content after its latest run on or before the day.</summary>
    private string Latest(string relation, DateOnly day)
    {
        var found = None;
        foreach (var (d, output) in Outputs(relation))
        {
            if (d > day) { break; }
            found = output;
        }

        return found;
    }

    /// <summary>A day-partitioned input as of the day: that day's fingerprint, or with History a sum over every day up to it.</summary>
    private string Dated(string relation, DateOnly day, InputWindow window)
    {
        var days = Outputs(relation);
        var own = days.GetValueOrDefault(day, None);
        if (window == InputWindow.Day) { return own; }

        // Days before the asked one are final (asks come in ascending day order), so their sum is kept and extended.
        var (before, sum) = _history.TryGetValue(relation, out var h) && h.Before <= day ? h : (DateOnly.MinValue, 0UL);
        foreach (var (d, output) in days)
        {
            if (d >= day) { break; }
            if (d >= before) { sum += Hash64($"{d:yyyy-MM-dd}={output}"); }
        }

        _history[relation] = (day, sum);
        return $"{own};{sum.ToString("x16", CultureInfo.InvariantCulture)}";
    }

    /// <summary>What of a model decides its output: the SQL (trimmed), the kind and its options, what it reads. Not tests, tags or descriptions.</summary>
    internal static string Definition(ModelDefinition model) =>
        Hash([model.Kind.ToString(), model.Sql.Trim(), model.Reads.ToString(),
            JsonSerializer.Serialize(model.Incremental), JsonSerializer.Serialize(model.Snapshot), JsonSerializer.Serialize(model.Clean)]);

    internal static string Hash(IEnumerable<string> parts) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts))))[..32];

    private static ulong Hash64(string text) => BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
