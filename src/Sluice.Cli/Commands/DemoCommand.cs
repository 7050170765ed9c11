using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Sluice.Connectors.Files;
using Sluice.Hosting;
using Sluice.Recipes.Generators;

namespace Sluice.Cli.Commands;

/// <summary>
/// Starts every recipe that runs embedded (vehicle-files, tenant-analytics, repeat-reminder, sales-warehouse on DuckDB),
/// feeds them generated data and narrates: what landed, what failed and why, what the jobs did, where the console is
/// (with an admin token made for it), and which commands show the results, each naming the data folder.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var interval = new Option<double>("--interval") { Description = "Seconds between generated rounds", DefaultValueFactory = _ => 3 };
        var files = new Option<int>("--files") { Description = "Files per round", DefaultValueFactory = _ => 4 };
        var port = new Option<int>("--port") { Description = "HTTP port of the tenant-analytics server, which also serves the management endpoint (/healthz, /readyz, /metrics, /api/status) for every recipe of the demo", DefaultValueFactory = _ => Serving.HttpServerOptions.DefaultPort };
        var command = new Command("demo", "Run the embedded recipes on generated data, narrating what happens; Ctrl-C stops cleanly") { interval, files, port };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var recipe = CliContext.LoadRecipe("vehicle-files");
            // The demo narrates rejected files itself; the log adds only what goes wrong beyond that.
            using var services = CliContext.Services(result, LogLevel.Error);
            using var runLock = CliContext.TakeRunLock(services, recipe.Name);
            var host = new RecipeHost(recipe, services);
            await using (host.ConfigureAwait(false))
            {
                var source = host.Sources.OfType<FilesSource>().First();
                var generator = new VehicleFilesGenerator(source.Drop.Incoming, new VehicleFilesGeneratorOptions
                {
                    Files = result.GetValue(files), EventsPerFile = 250, BadRatio = 0.1, LateRatio = 0.05,
                }, services.Time);
                long landed = 0, failed = 0, rows = 0;
                source.Outcomes += o =>
                {
                    switch (o.Status)
                    {
                        case FileStatus.Landed:
                            Interlocked.Increment(ref landed);
                            Interlocked.Add(ref rows, o.Rows);
                            Say($"landed  {o.File}: {o.Rows} rows into {o.Partitions} day partition(s)");
                            break;
                        case FileStatus.Failed:
                            Interlocked.Increment(ref failed);
                            Say($"FAILED  {o.File} -> failed/ : {o.Reason}");
                            break;
                        default:
                            Say($"skipped {o.File}: {o.Reason}");
                            break;
                    }
                };
                host.JobCompleted += (job, outcome) => Say($"job     {job.FullName}: {outcome.Message}");

                var data = services.Data.Root;
                var flag = DataFlag(services);
                Console.WriteLine($"""
                    Sluice demo: recipe vehicle-files on {data}
                      drop folder  {source.Drop.Incoming}
                      generator    {result.GetValue(files)} files every {result.GetValue(interval)} s, 250 events each, 5% late events, 10% broken files
                      lake         {services.Data.LakeRoot}
                    In another terminal, while this runs:
                      ./sluice query{flag} "SELECT * FROM reports.daily_summary ORDER BY day DESC, vehicle_id LIMIT 10"
                      ./sluice query{flag} "SELECT date, count(*) AS events FROM raw_data.vehicle_events GROUP BY ALL ORDER BY 1"
                      ./sluice dlq list{flag}          (broken files, with the reason and line)
                      ./sluice job history{flag}
                      ls {Quote(Path.Combine(data, "vehicle-files", "failed"))}
                    Ctrl-C stops cleanly.
                    """);

                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                // Any part that fails (a recipe's component) stops the whole demo, and its error ends the command.
                var running = host.RunAsync(stop.Token).StopOnFailure(stop);
                var feeding = generator.RunContinuousAsync(TimeSpan.FromSeconds(result.GetValue(interval)), w => Say($"wrote   {w.Count} new files into incoming/"), stop.Token);
                var status = ReportAsync(() => $"status  {landed} files landed, {failed} failed, {rows:N0} events in the lake, {services.DeadLetters.Count(status: "pending")} dead letters pending", stop.Token);
                var analytics = TenantAnalyticsAsync(result.GetValue(port), services, stop.Token).StopOnFailure(stop);
                var reminders = RepeatReminderAsync(TimeSpan.FromSeconds(result.GetValue(interval)), services, stop.Token).StopOnFailure(stop);
                var sales = SalesWarehouseAsync(services, stop.Token).StopOnFailure(stop);
                try
                {
                    await Task.WhenAll(running, feeding, status, analytics, reminders, sales).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    // Ctrl-C is how the demo ends: a clean stop, said below, exit 0.
                }

                Say($"stopped: {landed} files landed, {failed} failed, {rows:N0} events. Data stays in {data}.");
                return 0;
            }
        }));
        return command;
    }

    /// <summary>The tenant-analytics recipe next to vehicle-files: HTTP ingest, tokens and the metrics API, with traffic.</summary>
    private static async Task TenantAnalyticsAsync(int port, Sluice.Hosting.EngineServices services, CancellationToken ct)
    {
        var recipe = CliContext.LoadRecipe("tenant-analytics");
        using var runLock = CliContext.TakeRunLock(services, recipe.Name);
        await new Recipes.Demo.TenantAnalyticsDemo(recipe, services, Say) { DataFlag = DataFlag(services) }.RunAsync(new Serving.HttpServerOptions("127.0.0.1", port), 50, ct).ConfigureAwait(false);
    }

    /// <summary>The repeat-reminder recipe: pushed events on a simulated calendar, and the reminder mails it sends.</summary>
    private static async Task RepeatReminderAsync(TimeSpan interval, Sluice.Hosting.EngineServices services, CancellationToken ct)
    {
        var recipe = CliContext.LoadRecipe("repeat-reminder");
        using var runLock = CliContext.TakeRunLock(services, recipe.Name);
        await new Recipes.Demo.RepeatReminderDemo(recipe, services, Say) { DataFlag = DataFlag(services) }.RunAsync(interval, ct).ConfigureAwait(false);
    }

    /// <summary>The sales-warehouse recipe: a few days of CSV exports modelled into a star schema and marts on DuckDB.</summary>
    private static async Task SalesWarehouseAsync(Sluice.Hosting.EngineServices services, CancellationToken ct)
    {
        var recipe = CliContext.LoadRecipe("sales-warehouse");
        using var runLock = CliContext.TakeRunLock(services, recipe.Name);
        await new Recipes.Demo.SalesWarehouseDemo(recipe, services, Say) { DataFlag = DataFlag(services) }.RunAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The <c>--data</c> every printed command carries, as an absolute path: it works from any folder, also another terminal's.</summary>
    private static string DataFlag(Sluice.Hosting.EngineServices services) => $" --data {Quote(services.Data.Root)}";

    private static string Quote(string path) => path.Any(c => c is ' ' or '\'' or '"' or '$' or '`' or '\\') ? $"'{path.Replace("'", "'\\''", StringComparison.Ordinal)}'" : path;

    private static async Task ReportAsync(Func<string> line, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(15), ct).ConfigureAwait(false);
                Say(line());
            }
        }
        catch (OperationCanceledException)
        {
            // Demo stopping.
        }
    }

    private static void Say(string text) => Console.WriteLine($"{DateTime.UtcNow.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {text}");
}
