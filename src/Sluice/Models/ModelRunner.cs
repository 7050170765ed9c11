using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Sluice.Connectors.OpenLineage;
using Sluice.Core.Recipes;
using Sluice.Jobs;

namespace Sluice.Models;

/// <summary>
/// Runs models on a warehouse and records every run in <c>job_runs</c> as <c>&lt;recipe&gt;/&lt;job&gt;/&lt;model&gt;</c>
/// (start, end, rows in and out, status), so <c>sluice job history</c> shows them next to the job's own runs.
/// </summary>
public sealed class ModelRunner(IEngineServices services, string scope, string trigger)
{
    private readonly JobRunStore _runs = new(services.Metadata, services.Time);
    private readonly ILogger _log = services.Logging.CreateLogger("Sluice.Models");

    public async Task<ModelRunResult> RunAsync(IWarehouse warehouse, ModelProject project, ModelDefinition model, DateOnly asOf, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(warehouse);
        ArgumentNullException.ThrowIfNull(model);
        var id = _runs.Start($"{scope}/{model.Name}", new DateTimeOffset(asOf.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero), $"{trigger}:{warehouse.Engine}");
        using var span = JobTracing.Model($"{scope}/{model.Name}", id, asOf, trigger, model.Sources.Concat(model.Dependencies), model.Name, warehouse.Engine);
        var lineage = services.Lineage is { } l ? ModelLineage.Start(l, $"{scope}/{model.Name}", model, warehouse.Engine) : null;
        var clock = Stopwatch.StartNew();
        try
        {
            var result = await warehouse.RunAsync(project, model, asOf, ct).ConfigureAwait(false);
            _runs.Finish(id, JobRunStore.Succeeded, result.RowsIn, result.RowsOut, result.Message);
            JobTracing.Finished(span, result.RowsIn, result.RowsOut);
            End(lineage, LineageEnd.Complete);
            ModelsLog.Ran(_log, model.Name, asOf, warehouse.Engine, result.Message, clock.Elapsed.TotalSeconds);
            return result;
        }
        catch (OperationCanceledException)
        {
            _runs.Finish(id, JobRunStore.Interrupted, null, null, "cancelled");
            JobTracing.Ended(span, JobRunStore.Interrupted, "cancelled");
            End(lineage, LineageEnd.Abort);
            throw;
        }
        catch (Exception e)
        {
            _runs.Finish(id, JobRunStore.Failed, null, null, e.Message);
            JobTracing.Ended(span, JobRunStore.Failed, e.Message);
            End(lineage, LineageEnd.Fail, e.Message);
            ModelsLog.Failed(_log, model.Name, asOf, e.Message);
            throw;
        }
    }

    private void End(LineageRun? run, LineageEnd end, string? error = null)
    {
        if (run is not null)
        {
            services.Lineage?.End(run, end, error);
        }
    }
}
