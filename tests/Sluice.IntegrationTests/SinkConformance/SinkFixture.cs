using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>What a sink holds for a key written twice.</summary>
public enum SinkKind
{
    /// <summary>Every row once (a log: lake changes, an HTTP API, the reminder store).</summary>
    Append,

    /// <summary>The last row of each key (postgres, clickhouse, redis).</summary>
    Keyed,
}

/// <summary>
/// What the conformance suite needs of one sink: make it (fresh, as a restarted process would), shape the suite's rows
/// into the batches it takes, read back what landed as rows, and break its server for a while. A sink that does not
/// have a property says so here (<see cref="MirrorOption"/>), and the suite checks that it refuses it clearly.
/// </summary>
public abstract class SinkFixture : IAsyncDisposable
{
    public abstract Engine Engine { get; }

    public abstract SinkKind Kind { get; }

    /// <summary>A new instance of the sink, as a restart makes it (through <paramref name="fault"/>'s broken path when given).</summary>
    public abstract IBatchSink Create(ITransientFault? fault = null);

    /// <summary>The steps a pipeline puts before the sink (the reminder store's normalisation); none by default.</summary>
    public virtual IReadOnlyList<IBatchStep> Steps => [];

    /// <summary>The suite's rows as the batch this sink takes.</summary>
    public virtual RecordBatch Batch(IReadOnlyList<Item> rows) => ConformanceRows.Batch(rows);

    /// <summary>What landed, one <see cref="Item.Text"/> per row, sorted.</summary>
    public abstract Task<List<string>> ReadAsync();

    /// <summary>What the sink should hold once <paramref name="written"/> landed.</summary>
    public virtual List<string> Expected(IReadOnlyList<Item> written) =>
        Kind == SinkKind.Keyed ? ConformanceRows.LastPerKey(written) : ConformanceRows.Appended(written);

    /// <summary>A way to make the sink's writes fail for a while (a server unreachable, an API answering 503, a full disk).</summary>
    public abstract Task<ITransientFault> FaultAsync();

    /// <summary>
    /// The sink's options with a mirror asked for, as a recipe writes them (YAML): a mirror-capable sink's fixture
    /// also implements <see cref="IMirrorFixture"/>; any other must refuse these options at load, naming the key.
    /// </summary>
    public abstract string MirrorOption { get; }

    /// <summary>The sink type, to parse <see cref="MirrorOption"/> as the recipe loader does.</summary>
    public abstract ISinkType Type { get; }

    /// <summary>Removes what the sink wrote on the shared server (its schema, database or keys).</summary>
    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await CleanUpAsync();
        Engine.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Parses <paramref name="yaml"/> as this sink's entry of a recipe, as the loader does (unknown keys reported), and returns the errors.</summary>
    public IReadOnlyList<ConfigError> Load(string yaml)
    {
        var errors = new ConfigErrors();
        var folder = Path.Combine(Engine.DataRoot, "recipe");
        Directory.CreateDirectory(folder);
        var map = ConfigMap.Parse(yaml, "recipe.yaml", errors)!;
        Type.Parse(map, new RecipeContext("conformance", folder, errors)).ShouldNotBeNull();
        map.Done();
        return errors.All;
    }
}

/// <summary>A sink that keeps <c>mode: mirror</c>: the current state of a change stream's tables.</summary>
public interface IMirrorFixture
{
    IBatchSink CreateMirror();

    /// <summary>The mirror's rows (id, name, qty), sorted.</summary>
    Task<List<string>> ReadMirrorAsync();

    /// <summary>
    /// Compacts what the mirror has stored, as it does on its own later (a test's "now"): the lake folds every file
    /// (superseded versions and truncated rows go), ClickHouse merges (<c>OPTIMIZE ... FINAL</c>). A postgres mirror keeps
    /// no history to compact.
    /// </summary>
    Task FoldAsync();
}

/// <summary>A fault the test switches on and off; <see cref="Failures"/> counts the attempts it made fail.</summary>
public interface ITransientFault : IAsyncDisposable
{
    void Break();

    void Heal();

    int Failures { get; }
}
