using Sluice.Core.Recipes;
using Sluice.Core.Status;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// A recipe host's part in the status board: its pipelines' and jobs' figures, their states as the run goes, its
/// recipe's dead-letter counts, and the management file that lets <c>sluice status</c> find the running process.
/// </summary>
internal sealed class HostStatus
{
    private readonly Recipe _recipe;
    private readonly IEngineServices _services;
    private readonly Dictionary<string, PipelineStatus> _pipelines = new(StringComparer.Ordinal);
    private ManagementFile? _announced;

    public HostStatus(Recipe recipe, IEngineServices services, IEnumerable<(PipelineDefinition Definition, IRunnableSource Source)> pipelines)
    {
        _recipe = recipe;
        _services = services;
        var board = services.Status;
        board.Describe(RecipeShape.Of(recipe));
        foreach (var (definition, source) in pipelines)
        {
            var status = board.Pipeline(recipe.Name, definition.Name, definition.SourceType);
            (source as IStatusSource)?.AttachStatus(status);
            _pipelines[ComponentName(definition)] = status;
        }

        foreach (var job in recipe.Jobs) { board.Job(recipe.Name, job.Name, job.Schedule); }
        board.DeadLettersOf(recipe.Name, () => DeadLetterReasons.Count(recipe.Name, services.DeadLetters.PendingByReason(recipe.Name)));
    }

    /// <summary>The name a pipeline goes by in the host's messages and health.</summary>
    public static string ComponentName(PipelineDefinition p) => $"pipeline '{p.Name}' ({p.SourceType})";

    public void Running()
    {
        foreach (var p in _pipelines.Values) { p.Running(); }
    }

    /// <summary>A component failed: its pipeline shows the reason (the others stop with it).</summary>
    public void Failed(string component, string reason)
    {
        if (_pipelines.TryGetValue(component, out var p)) { p.Failed(reason); }
    }

    public void Stopped()
    {
        foreach (var p in _pipelines.Values.Where(p => p.State != "failed")) { p.Stopped(); }
    }

    public async Task<JobOutcome> RunJobAsync(JobDefinition job, Func<Task<JobOutcome>> run)
    {
        var status = _services.Status.Job(_recipe.Name, job.Name, job.Schedule);
        var started = status.Starting();
        try
        {
            var outcome = await run().ConfigureAwait(false);
            status.Finished(started, true, outcome.Message);
            return outcome;
        }
        catch (Exception e)
        {
            status.Finished(started, false, ComponentFailedException.ReasonOf(e));
            throw;
        }
    }

    /// <summary>Writes the management file once the server listens; the key is new for every run.</summary>
    public void Announce(Uri url, string key)
    {
        _announced = new ManagementFile(Environment.ProcessId, url.ToString().TrimEnd('/'), key, _recipe.Name, _services.Status.Started.UtcDateTime);
        _announced.Write(_services.Data);
    }

    public void Withdraw()
    {
        try
        {
            _announced?.Remove(_services.Data);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind, it names this pid, which is gone once the process exits: readers then say "not running".
        }
    }
}
