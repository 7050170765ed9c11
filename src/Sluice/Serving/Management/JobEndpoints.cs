using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sluice.Hosting;
using Sluice.Core.Recipes;
using Sluice.Jobs;
using Sluice.Models;
using Sluice.Serving.OpenApi;
using static Sluice.Serving.Management.OperatorApi;

namespace Sluice.Serving.Management;

/// <summary>
/// The console's job and model routes: the jobs of the recipes this process runs, with their schedule, next run and
/// last run; a job's run history; run now and backfill (in this process, recorded in <c>job_runs</c> as the scheduler's
/// runs are); a backfill's progress and its cancel; the models with their dependencies, last run and test results.
/// Admin only (<see cref="ManagementEndpoints.Allowed"/>). docs/CONSOLE.md, "Operator API".
/// </summary>
internal static class JobEndpoints
{
    public const int MaxRuns = 500;

    /// <summary>How long a cancel waits for the backfill to stop before it answers (the day in progress must notice).</summary>
    public static readonly TimeSpan CancelWait = TimeSpan.FromSeconds(10);

    public static void Map(WebApplication app, ServingContext context, string key)
    {
        app.MapGet("/api/jobs", (HttpContext http) => Allowed(http, context, key) ?? Jobs(context))
            .WithSummary("The jobs of the recipes this process runs: schedule, next run, whether one runs now, last run. Admin.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/jobs/{recipe}/{job}/runs", (HttpContext http, string recipe, string job) => Allowed(http, context, key) ?? Runs(http, context, recipe, job))
            .WithSummary("A job's runs, newest first (limit, default 50): status, start, end, message, the day it ran as of. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/jobs/{recipe}/{job}/run", async (HttpContext http, string recipe, string job) => Allowed(http, context, key) ?? await RunAsync(context, recipe, job).ConfigureAwait(false))
            .WithSummary("Runs the job once now in this process (202 with the run's id; 409 when it is running already). Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/jobs/{recipe}/{job}/backfill", async (HttpContext http, string recipe, string job) => Allowed(http, context, key) ?? await BackfillAsync(http, context, recipe, job).ConfigureAwait(false))
            .WithSummary("Recomputes the job day by day over { from, to } (dates, inclusive) in this process (202 with the backfill's id). Admin.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/backfills/{id}", (HttpContext http, string id) => Allowed(http, context, key) ?? Backfill(context, id))
            .WithSummary("A backfill's progress: days in all, done, failed, state (running|succeeded|failed|cancelled) and message. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/backfills/{id}/cancel", async (HttpContext http, string id) => Allowed(http, context, key) ?? await CancelAsync(context, id).ConfigureAwait(false))
            .WithSummary("Cancels a backfill: the day in progress is cancelled (nothing of it commits), the days done stay; answers its state. Admin.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/models", (HttpContext http) => Allowed(http, context, key) ?? Models(context))
            .WithSummary("The SQL models of the recipes this process runs: kind, file, dependencies, tags, last run, latest test results. Admin.")
            .Access(ApiAccess.Management);
    }

    private static IResult? Allowed(HttpContext http, ServingContext context, string key) => ManagementEndpoints.Allowed(http, context, key);

    private static IResult Jobs(ServingContext context)
    {
        var runs = new JobRunStore(context.Services.Metadata, context.Services.Time);
        var hosts = context.Services.Running?.All ?? [];
        return Results.Json(new
        {
            jobs = hosts.SelectMany(h => h.Recipe.Jobs.Select(j => new
            {
                recipe = j.Recipe, job = j.Name, type = j.Type, schedule = j.Schedule, nextRunAt = Utc(h.NextRunAt(j)), running = h.IsRunning(j),
                lastRun = runs.Runs(j.FullName, 1) is [var last] ? Run(last) : null,
            })),
        });
    }

    private static IResult Runs(HttpContext http, ServingContext context, string recipe, string job)
    {
        var (_, definition, missing) = Find(context, recipe, job);
        if (missing is not null) { return missing; }
        var (limit, bad) = Int(http.Request, "limit", 50, 1, MaxRuns);
        if (bad is not null) { return bad; }
        var runs = new JobRunStore(context.Services.Metadata, context.Services.Time).Runs(definition!.FullName, limit);
        return Results.Json(new { runs = runs.Select(Run) });
    }

    private static async Task<IResult> RunAsync(ServingContext context, string recipe, string job)
    {
        var (host, definition, missing) = Find(context, recipe, job);
        if (missing is not null) { return missing; }
        try
        {
            return Results.Json(new { runId = await host!.RunNowAsync(definition!).ConfigureAwait(false) }, statusCode: StatusCodes.Status202Accepted);
        }
        catch (JobBusyException e)
        {
            return Error(409, e.Message);
        }
    }

    private static async Task<IResult> BackfillAsync(HttpContext http, ServingContext context, string recipe, string job)
    {
        var (host, definition, missing) = Find(context, recipe, job);
        if (missing is not null) { return missing; }
        var (body, badBody) = await ReadAsync<RangeBody>(http.Request).ConfigureAwait(false);
        if (badBody is not null) { return badBody; }
        var (from, badFrom) = Date(body!.From, "from");
        var (to, badTo) = Date(body.To, "to");
        if ((badFrom ?? badTo) is { } bad) { return Error(400, bad); }
        if (to < from) { return Error(400, $"to: {body.To} is before from {body.From}"); }
        if (to.DayNumber - from.DayNumber + 1 > RecipeOperations.MaxBackfillDays)
        {
            return Error(400, $"to: {body.From}..{body.To} is {to.DayNumber - from.DayNumber + 1} days; a backfill covers at most {RecipeOperations.MaxBackfillDays}");
        }

        try
        {
            return Results.Json(new { backfillId = host!.StartBackfill(definition!, from, to).Id }, statusCode: StatusCodes.Status202Accepted);
        }
        catch (JobBusyException e)
        {
            return Error(409, e.Message);
        }
    }

    private static IResult Backfill(ServingContext context, string id) =>
        FindBackfill(context, id) is { } backfill ? Results.Json(View(backfill)) : BackfillNotFound(id);

    private static async Task<IResult> CancelAsync(ServingContext context, string id)
    {
        if (FindBackfill(context, id) is not { } backfill) { return BackfillNotFound(id); }
        backfill.Cancel();
        try
        {
            await backfill.Ended.WaitAsync(CancelWait, context.Services.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Still stopping (a day that takes its time to notice): the state says running, a later GET shows the end.
        }

        return Results.Json(new { state = backfill.View().State });
    }

    private static IResult Models(ServingContext context)
    {
        var runs = new JobRunStore(context.Services.Metadata, context.Services.Time);
        var tests = new ModelTestResults(context.Services.Metadata, context.Services.Time);
        var models = new List<object>();
        foreach (var host in context.Services.Running?.All ?? [])
        {
            foreach (var job in host.Recipe.Jobs)
            {
                if (job.Factory is not ModelsJobFactory factory) { continue; }
                var results = tests.Latest(factory.Scope);
                models.AddRange(factory.Options.Project.Models.Select(m => new
                {
                    recipe = job.Recipe, job = job.Name, name = m.Name, kind = m.Kind.ToString().ToLowerInvariant(), file = m.File,
                    dependsOn = m.Dependencies, sources = m.Sources, tags = m.Tags,
                    lastRun = runs.Runs($"{factory.Scope}/{m.Name}", 1) is [var last]
                        ? new { status = last.Status, at = Utc(last.EndedAt ?? last.StartedAt), message = last.Message }
                        : null,
                    tests = m.Tests.Select(t => t.Describe()).Select(name => results.FirstOrDefault(r => r.Model == m.Name && r.Test == name) is { } r
                        ? new { name, status = r.Status, message = r.Message, at = Utc(r.At) }
                        : new { name, status = "not run", message = (string?)"no result yet: sluice models test or models build runs the tests", at = (string?)null }),
                }));
            }
        }

        return Results.Json(new { models });
    }

    private static object Run(JobRun r) => new
    {
        id = r.Id, status = r.Status, startedAt = Utc(r.StartedAt), finishedAt = Utc(r.EndedAt), message = r.Message, date = Day(r.AsOf),
        trigger = r.Trigger, rowsIn = r.RowsIn, rowsOut = r.RowsOut,
    };

    private static BackfillView View(Backfill b) => b.View();

    private static Backfill? FindBackfill(ServingContext context, string id) =>
        (context.Services.Running?.All ?? []).Select(h => h.FindBackfill(id)).FirstOrDefault(b => b is not null);

    private static IResult BackfillNotFound(string id) => Error(404, $"id: no backfill '{id}' in this process (backfills are kept while the process runs, the last {RecipeOperations.KeptBackfills})");

    private static (RecipeOperations? Host, JobDefinition? Job, IResult? Missing) Find(ServingContext context, string recipe, string job)
    {
        var (host, missing) = Recipe(context, recipe);
        if (host is null) { return (null, null, missing); }
        return host.Recipe.Job(job) is { } definition
            ? (host, definition, null)
            : (null, null, Error(404, $"job: recipe '{recipe}' has no job '{job}' (jobs: {string.Join(", ", host.Recipe.Jobs.Select(j => j.Name).DefaultIfEmpty("none"))})"));
    }

    private sealed record RangeBody(string? From, string? To);
}
