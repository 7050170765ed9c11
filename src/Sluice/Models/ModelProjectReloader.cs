using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Sluice.Connectors.Postgres;
using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Models;

/// <summary>
/// The models a long-running process runs, read again from disk when their files change (as Vector's
/// <c>--watch-config</c>): each run of the models job first compares the folder's content with what it last read. A
/// valid edit is taken whole for the next run; an edit that does not load or does not compile on the job's engine
/// (<see cref="ModelBinder"/>, as <c>sluice validate</c>) is refused whole: the previous models keep running, a Warning
/// says why with the file and line, and health is degraded until the folder is valid again. So a run never mixes
/// old and new models.
/// </summary>
public sealed class ModelProjectReloader
{
    private readonly Lock _gate = new();
    private readonly ModelsOptions _options;
    private ModelProject _project;
    private string _fingerprint;

    public ModelProjectReloader(ModelsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _project = options.Project;
        _fingerprint = Fingerprint(options.Project.Folder);
    }

    /// <summary>The models to run now: those on disk when they changed and are valid, else those last taken.</summary>
    public async Task<ModelProject> CurrentAsync(IEngineServices services, ModelsJobFactory job, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(job);
        var folder = _options.Project.Folder;
        var fingerprint = Fingerprint(folder);
        lock (_gate)
        {
            if (fingerprint == _fingerprint) { return _project; }
        }

        var log = services.Logging.CreateLogger("Sluice.Models");
        var component = $"{job.Scope}: models";
        var errors = new ConfigErrors();
        var project = ModelProject.Load(folder, _options.Sources, _options.Quarantine, errors);
        if (!errors.Any) { await BindAsync(services, job, project, errors, ct).ConfigureAwait(false); }
        lock (_gate)
        {
            _fingerprint = fingerprint;
            if (errors.Any)
            {
                ReloadLog.Refused(log, job.Scope, folder, errors.All.Count, string.Join("; ", errors.All.Take(3)));
                services.Health.Degrade(component, $"the models changed on disk do not load or compile ({errors.All[0]}); the previous models keep running until they are fixed");
                return _project;
            }

            _project = project;
        }

        ReloadLog.Reloaded(log, job.Scope, folder, project.Models.Count);
        services.Health.Clear(component);
        return project;
    }

    /// <summary>Compiles the models on the job's engine against the columns the lake has, as <c>sluice validate</c> does.</summary>
    private static async Task BindAsync(IEngineServices services, ModelsJobFactory job, ModelProject project, ConfigErrors errors, CancellationToken ct)
    {
        var postgres = job.Options.EffectiveEngine(job.EngineOverride) == WarehouseEngine.Postgres;
        var sources = ModelBinder.LakeSources(services.Lake, project, postgres);
        if (postgres)
        {
            var settings = job.Postgres ?? PostgresConnectionOptions.FromEnvironment().WithDatabase(job.Options.Database).Builder();
            await ModelBinder.BindPostgresAsync(project, sources, settings, errors, ct).ConfigureAwait(false);
            return;
        }

        var temp = Path.Combine(services.Data.Root, "tmp", $"bind-{Guid.NewGuid():N}");
        try { ModelBinder.BindDuckDb(project, sources, temp, errors); }
        finally { if (Directory.Exists(temp)) { Directory.Delete(temp, recursive: true); } }
    }

    /// <summary>A hash of every file under the models folder, by relative path and content (a models folder is small).</summary>
    private static string Fingerprint(string folder)
    {
        if (!Directory.Exists(folder)) { return ""; }
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(Path.GetRelativePath(folder, file) + "\n"));
            try
            {
                hash.AppendData(File.ReadAllBytes(file));
            }
            catch (IOException)
            {
                // Being written or gone since it was listed: the next look sees it settled.
                hash.AppendData("?"u8);
            }
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }
}

internal static partial class ReloadLog
{
    [LoggerMessage(11700, LogLevel.Warning, "{Scope}: the models in {Folder} changed on disk but {Count} problem(s) keep them from loading; the previous models keep running until they are fixed: {Problems}")]
    public static partial void Refused(ILogger logger, string scope, string folder, int count, string problems);

    [LoggerMessage(11701, LogLevel.Information, "{Scope}: the models in {Folder} changed on disk and were reloaded ({Count} models); the next runs use them")]
    public static partial void Reloaded(ILogger logger, string scope, string folder, int count);
}
