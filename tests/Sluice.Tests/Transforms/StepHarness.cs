using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.DeadLetters;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Hosting;

namespace Sluice.Tests.Transforms;

/// <summary>A generic step built from its YAML exactly as a recipe's <c>steps:</c> entry is (pipeline <c>p</c>, first step), over a temporary data folder.</summary>
internal sealed class StepHarness : IDisposable
{
    private readonly string _root;

    public StepHarness(TimeProvider? time = null, string? root = null)
    {
        _root = root ?? Path.Combine(Path.GetTempPath(), "sluice-steps-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_root);
        Services = new EngineServices(new DataDirectory(_root), time ?? TimeProvider.System, NullLoggerFactory.Instance);
    }

    public EngineServices Services { get; }

    public string Root => _root;

    public DeadLetterStore Letters => Services.DeadLetters;

    /// <summary>The problems <c>sluice validate</c> would report for this step entry (indented under <c>steps:</c>), as <c>file:line: key: what</c>.</summary>
    public static (IStepFactory? Factory, IReadOnlyList<string> Errors) Parse(string stepYaml, string folder = ".")
    {
        var errors = new ConfigErrors();
        var yaml = "pipelines:\n  p:\n    steps:\n" + string.Join("\n", stepYaml.Trim('\n').Split('\n').Select(l => "      " + l)) + "\n";
        var map = ConfigMap.Parse(yaml, "recipe.yaml", errors)!;
        var item = map.Map("pipelines")!.Map("p")!.MapList("steps").Single();
        var type = Components.Create().Step(item.RequiredString("type")) ?? throw new InvalidOperationException("unknown step");
        var factory = type.Parse(item, new RecipeContext("r", folder, errors));
        item.Done();
        return (factory, errors.All.Select(e => e.ToString()).ToList());
    }

    public IBatchStep Create(string stepYaml, string folder = ".")
    {
        var (factory, errors) = Parse(stepYaml, folder);
        if (errors.Count > 0) { throw new InvalidOperationException(string.Join("\n", errors)); }
        return factory!.Create(Services);
    }

    public static ColumnBatch Table(string name, params (string Name, FieldType Type, Array Values)[] columns) =>
        new(new TableSchema(name, columns.Select(c => new FieldSpec(c.Name, c.Type, false)).ToList()), columns.Select(c => c.Values).ToArray(), columns.Length == 0 ? 0 : columns[0].Values.Length);

    public static async Task<RecordBatch> RunAsync(IBatchStep step, long position, params ColumnBatch[] tables) =>
        await step.ApplyAsync(new RecordBatch(tables, position), CancellationToken.None);

    public static object?[] Column(ColumnBatch table, string name) =>
        table.Schema.IndexOf(name) is var at and >= 0 ? Enumerable.Range(0, table.Count).Select(r => table.Value(at, r)).ToArray() : throw new InvalidOperationException($"no column {name} in {string.Join(",", table.Schema.Fields.Select(f => f.Name))}");

    public void Dispose()
    {
        Services.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
