using System.CommandLine;
using System.Globalization;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;
using Sluice.Core.Text;
using Sluice.Jobs;

namespace Sluice.Cli.Commands;

internal static class JobCommands
{
    public static Command Create()
    {
        var command = new Command("job", "Run jobs by hand and see their history");
        command.Subcommands.Add(CreateRun());
        command.Subcommands.Add(CreateHistory());
        return command;
    }

    private static Command CreateRun()
    {
        var job = new Argument<string>("job") { Description = "<recipe>/<job>, e.g. vehicle-files/daily-summary" };
        var date = new Option<string?>("--date") { Description = "Run as of this date (YYYY-MM-DD, UTC); default today" };
        var now = new Option<string?>("--now") { Description = "Run as of this instant (ISO-8601), for replays and tests" };
        var failOn = DeadLetterReport.FailOption();
        var command = new Command("run", "Run one job now; waits if the running instance is already running it") { job, date, now, failOn };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (_, definition) = CliContext.LoadJob(result.GetValue(job)!);
            using var services = JobServices(result, definition);
            using var letters = DeadLetterTally.Begin();
            var asOf = AsOf(result.GetValue(date), result.GetValue(now), services.Time);
            var outcome = await new JobRunner(services).RunAsync(definition, new JobRequest(asOf), ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"{definition.FullName} as of {asOf:yyyy-MM-dd'T'HH:mm:ss'Z'}: {outcome.Message}").ConfigureAwait(false);
            return await DeadLetterReport.FinishAsync(letters, result.GetValue(failOn), alreadySaid: true).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command CreateHistory()
    {
        var job = new Option<string?>("--job") { Description = "Only this job (<recipe>/<job>) or recipe" };
        var limit = new Option<int>("--limit") { Description = "Runs shown, newest first", DefaultValueFactory = _ => 20 };
        var format = CliOutput.FormatOption();
        var command = new Command("history", "Recent job runs: when, as of what, status, rows in and out") { job, limit, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var filter = result.GetValue(job);
            using var services = CliContext.RecipeServices(result, filter?.Split('/')[0]);
            var runs = new JobRunStore(services.Metadata, services.Time).History(result.GetValue(job), result.GetValue(limit));
            if (runs.Count == 0 && result.GetValue(format) == Sluice.Cli.QueryFormat.Table)
            {
                await Console.Out.WriteLineAsync("no job runs yet").ConfigureAwait(false);
                return 0;
            }

            var rows = runs.Select(r => new object?[]
            {
                r.Id, r.Job, r.Trigger, new Sluice.Cli.UtcInstant(r.AsOf), new Sluice.Cli.UtcInstant(r.StartedAt),
                r.EndedAt is { } e ? $"{(e - r.StartedAt).TotalSeconds:0.0}s" : "", r.Status, r.RowsIn, r.RowsOut, r.Message,
            }).ToList();
            var table = new Lake.QueryResult(["id", "job", "trigger", "as_of", "started_utc", "took", "status", "rows_in", "rows_out", "message"], rows);
            await CliOutput.WriteAsync(result, table, result.GetValue(format)).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    public static Command CreateBackfill()
    {
        var job = new Argument<string>("job") { Description = "<recipe>/<job>, e.g. vehicle-files/daily-summary" };
        var from = new Option<string>("--from") { Description = "First day (YYYY-MM-DD or ISO-8601 instant, UTC)", Required = true };
        var to = new Option<string>("--to") { Description = "Last day, inclusive", Required = true };
        var failOn = DeadLetterReport.FailOption();
        var command = new Command("backfill", "Recompute a job over a date range, day by day, with progress") { job, from, to, failOn };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var (recipe, definition) = CliContext.LoadJob(result.GetValue(job)!);
            var first = Day(result.GetValue(from)!, "--from");
            var last = Day(result.GetValue(to)!, "--to");
            if (last < first)
            {
                throw new SluiceException($"--to {last:yyyy-MM-dd} is before --from {first:yyyy-MM-dd}.");
            }

            using var services = JobServices(result, definition);
            if (CliContext.IsCluster(result) && definition.Factory is Core.Pipeline.IRowFeedingJob) { services.Cluster = ClusterLog(recipe, definition); }
            using var letters = DeadLetterTally.Begin();
            var runner = new JobRunner(services);
            var asOf = new DateTimeOffset(last.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddDays(1);
            var (fromTime, toTime) = Instants(result.GetValue(from)!, result.GetValue(to)!);
            var outcome = await WithProgressAsync($"backfill {definition.FullName}", progress =>
                runner.RunAsync(definition, new JobRequest(asOf, first, last, progress, "backfill") { FromTime = fromTime, ToTime = toTime }, ct)).ConfigureAwait(false);

            await Console.Out.WriteLineAsync($"{definition.FullName} {first:yyyy-MM-dd}..{last:yyyy-MM-dd}: {outcome.Message}").ConfigureAwait(false);
            return await DeadLetterReport.FinishAsync(letters, result.GetValue(failOn), alreadySaid: true).ConfigureAwait(false);
        }));
        return command;
    }

    /// <summary>
    /// <c>backfill --cluster</c> of a job that feeds a pipeline (<c>postgres_backfill</c>): its pages go through the
    /// cluster's log, to the pipeline's workers, as the workers' own runs of it do (docs/SCALING.md, "Jobs"); the
    /// cluster's settings, once the job is one cluster mode runs as configured.
    /// </summary>
    private static Cluster.ClusterOptions ClusterLog(Recipe recipe, JobDefinition definition)
    {
        var variables = Cluster.ClusterSettings.Variables(recipe, Environment.GetEnvironmentVariable);
        if ((Cluster.ClusterJobs.FeedProblem(recipe, definition) ?? Cluster.ClusterJobs.Problem(definition, variables)) is { } problem)
        {
            throw new SluiceException($"backfill --cluster: {problem}");
        }

        return Cluster.ClusterOptions.FromEnvironment(variables);
    }

    /// <summary>A job that reads what its recipe landed needs a data folder that holds it; others (a PostgreSQL backfill) read elsewhere.</summary>
    private static Sluice.Hosting.EngineServices JobServices(ParseResult result, JobDefinition definition) =>
        definition.Factory is IReadsDataFolder ? CliContext.RecipeServices(result, definition.Recipe) : CliContext.Services(result);

    public static DateTimeOffset AsOf(string? date, string? now, TimeProvider time)
    {
        if (date is not null && now is not null)
        {
            throw new SluiceException("give --date or --now, not both.");
        }

        if (now is not null)
        {
            return Timestamps.TryParseUtc(now.AsSpan(), out var t) ? new DateTimeOffset(t, TimeSpan.Zero)
                : throw new SluiceException($"--now '{now}' is not an ISO-8601 instant (for example 2025-11-08T10:30:00Z).");
        }

        if (date is not null)
        {
            return new DateTimeOffset(Day(date, "--date").ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        }

        return time.GetUtcNow();
    }

    /// <summary>--from as an instant (a date means its start); --to exclusive (a date means the end of that day).</summary>
    private static (DateTimeOffset From, DateTimeOffset To) Instants(string from, string to)
    {
        // Both were validated by Day() already.
        _ = Timestamps.TryParseDateOrInstant(from, out var start);
        _ = Timestamps.TryParseDateOrInstant(to, out var end);
        if (Timestamps.TryParseDate(to, out _)) { end = end.AddDays(1); }
        if (end <= start) { throw new SluiceException($"--to {to} is not after --from {from}."); }
        return (start, end);
    }

    /// <summary>
    /// Runs a job with its progress shown: a bar with the time remaining on a terminal, a line per step otherwise.
    /// </summary>
    internal static async Task<JobOutcome> WithProgressAsync(string label, Func<IProgress<JobProgress>, Task<JobOutcome>> run)
    {
        if (CliProgress.Terminal)
        {
            return await CliProgress.Bar().StartAsync(async p =>
                {
                    var task = p.AddTask(label);
                    var progress = new Progress<JobProgress>(j =>
                    {
                        task.MaxValue = Math.Max(1, j.Total);
                        task.Value = j.Done;
                        task.Description = $"{label} {j.What}";
                    });
                    return await run(progress).ConfigureAwait(false);
                }).ConfigureAwait(false);
        }

        var estimate = new ProgressEstimate(TimeProvider.System);
        return await run(new SynchronousProgress<JobProgress>(j => CliProgress.Lines.WriteLine(estimate.Line(label, j.Done, j.Total, j.What)))).ConfigureAwait(false);
    }

    internal static DateOnly Day(string text, string option) =>
        Timestamps.TryParseDateOrInstant(text, out var value) ? DateOnly.FromDateTime(value.UtcDateTime)
            : throw new SluiceException($"{option} '{text}' is not a date (YYYY-MM-DD) or an ISO-8601 instant.");
}
