using System.Text.RegularExpressions;
using Sluice.Core.Config;

namespace Sluice.Models;

public enum WarehouseEngine
{
    /// <summary>The embedded warehouse: DuckDB over the Parquet lake (default; nothing to install).</summary>
    DuckDb,

    /// <summary>PostgreSQL, reached through PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE.</summary>
    Postgres,
}

/// <summary>Options of a <c>models</c> job, read from the recipe's job block and validated at load.</summary>
public sealed partial class ModelsOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly ModelsOptions Default = OptionDefaults.Of<ModelsOptions>();

    /// <summary>Environment variable that overrides <see cref="Engine"/> (<c>duckdb</c> or <c>postgres</c>) without editing the recipe.</summary>
    public const string EngineVariable = "SLUICE_WAREHOUSE";

    /// <summary>The models folder, relative to the recipe: <c>&lt;schema&gt;/&lt;name&gt;.sql|.yaml</c>.</summary>
    public string Folder { get; init; } = "models";

    /// <summary>Lake tables the models read besides the clean models' own sources.</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];

    /// <summary>The table rejected rows go to, <c>schema.table</c>.</summary>
    public string Quarantine { get; init; } = "dw.quarantine";

    /// <summary>Where the models run.</summary>
    public WarehouseEngine Engine { get; init; } = WarehouseEngine.DuckDb;

    /// <summary>For postgres: the database (default: PGDATABASE).</summary>
    public string? Database { get; init; }

    /// <summary>
    /// Days before a scheduled or manual run's as-of day recomputed by every run (<c>lookback: 3d</c>; default 0), for
    /// inputs Sluice cannot fingerprint (SQL reading the clock, tables outside the models): changed files and models
    /// are found without it.
    /// </summary>
    public int LookbackDays { get; init; }

    /// <summary>The loaded project (validated with the recipe).</summary>
    public required ModelProject Project { get; init; }

    /// <summary>The engine after the environment override.</summary>
    public WarehouseEngine EffectiveEngine(WarehouseEngine? cli = null) => EffectiveEngine(cli, Engine);

    /// <summary>The command line's engine, else <see cref="EngineVariable"/>'s, else <paramref name="configured"/>.</summary>
    public static WarehouseEngine EffectiveEngine(WarehouseEngine? cli, WarehouseEngine configured)
    {
        if (cli is { } chosen) { return chosen; }
        var env = Environment.GetEnvironmentVariable(EngineVariable);
        return string.IsNullOrWhiteSpace(env) ? configured : ParseEngine(env) ?? throw new Core.SluiceException($"{EngineVariable}='{env}' is not a warehouse engine (duckdb or postgres)");
    }

    public static WarehouseEngine? ParseEngine(string text) => text.Trim().ToLowerInvariant() switch
    {
        "duckdb" or "lake" or "embedded" => WarehouseEngine.DuckDb,
        "postgres" or "postgresql" or "pg" => WarehouseEngine.Postgres,
        _ => null,
    };

    public static ModelsOptions Parse(ConfigMap map, Core.Recipes.RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        var folder = map.String("folder", Default.Folder, doc: "The models folder, relative to the recipe: `<schema>/<name>.sql|.yaml`.") ?? Default.Folder;
        var sources = map.StringList("sources", doc: "Lake tables the models read besides the clean models' own sources.").Select(s => s.ToLowerInvariant()).ToList();
        var quarantine = (map.String("quarantine", Default.Quarantine, doc: "The table rejected rows go to, `schema.table`.") ?? Default.Quarantine).ToLowerInvariant();
        var defaultEngine = Default.Engine.ToString().ToLowerInvariant();
        var engineText = map.String("engine", defaultEngine, doc: "Where the models run.") ?? defaultEngine;
        var engine = ParseEngine(engineText);
        if (engine is null) { map.Error("engine", $"expected duckdb or postgres, got '{engineText}'"); }
        string? database = null;
        var pg = map.Map("postgres", doc: "With `engine: postgres`: where the warehouse is.");
        if (pg is not null)
        {
            database = pg.String("database", doc: "For postgres: the database.") is { Length: > 0 } db ? db : null;
            pg.Done();
        }

        foreach (var (key, value) in sources.Select(s => ("sources", s)).Append(("quarantine", quarantine)))
        {
            if (!Relation().IsMatch(value)) { map.Error(key, $"'{value}' must be schema.table (letters, digits, '_')"); }
        }

        var lookback = map.Duration("lookback", TimeSpan.FromDays(Default.LookbackDays), doc: "Whole days before the as-of date every run rebuilds (incremental models), from 0d to 366d.");
        if (lookback < TimeSpan.Zero || lookback.Ticks % TimeSpan.TicksPerDay != 0 || lookback > TimeSpan.FromDays(366))
        {
            map.Error("lookback", $"must be a whole number of days from 0d to 366d (for example 3d), got {lookback}");
        }

        if (Path.IsPathRooted(folder) || folder.Contains("..", StringComparison.Ordinal)) { map.Error("folder", $"must be a folder inside the recipe, got '{folder}'"); }
        var project = ModelProject.Load(Path.Combine(recipe.Folder, folder), sources, quarantine, recipe.Errors);
        return new ModelsOptions
        {
            Folder = folder, Sources = sources, Quarantine = quarantine, Engine = engine ?? Default.Engine, Database = database, Project = project,
            LookbackDays = Math.Clamp((int)lookback.TotalDays, 0, 366),
        };
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]*\\.[a-z_][a-z0-9_]*$")]
    private static partial Regex Relation();
}
