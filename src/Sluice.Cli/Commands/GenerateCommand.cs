using System.CommandLine;
using Sluice.Connectors.Files;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Recipes.Generators;

namespace Sluice.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var command = new Command("generate", "Write sample data for a recipe");
        command.Subcommands.Add(VehicleFiles());
        command.Subcommands.Add(RepeatReminder());
        command.Subcommands.Add(TenantAnalytics());
        command.Subcommands.Add(EngagementCdc());
        command.Subcommands.Add(SalesWarehouse());
        return command;
    }

    private static Command SalesWarehouse()
    {
        var days = new Option<int>("--days") { Description = "Daily file pairs (customers_YYYYMMDD.csv + sales_YYYYMMDD.csv)", DefaultValueFactory = _ => 3 };
        var customers = new Option<int>("--customers") { Description = "Customers in the first file (later files list new and changed ones)", DefaultValueFactory = _ => 1000 };
        var sales = new Option<int>("--sales-per-day") { Description = "Sales rows per daily file", DefaultValueFactory = _ => 5000 };
        var start = new Option<string?>("--start") { Description = "Date of the first file (YYYY-MM-DD); default --days days before today" };
        var moves = new Option<double>("--move-ratio") { Description = "Share of customers moving city each day (0..1)", DefaultValueFactory = _ => 0.01 };
        var dirty = new Option<double>("--dirty-ratio") { Description = "Share of dirty or invalid rows (0..1)", DefaultValueFactory = _ => 0.01 };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var command = new Command("sales-warehouse", "Daily customer and sales CSV exports, with moves, duplicates and dirty values, into the recipe's drop folder") { days, customers, sales, start, moves, dirty, seed };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var recipe = CliContext.LoadRecipe("sales-warehouse");
            var folder = recipe.Pipelines.Select(p => p.Source).OfType<FilesSourceFactory>().FirstOrDefault()?.Options.Folder ?? recipe.Name;
            var data = new DataDirectory(DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)));
            var incoming = new DropFolder(Path.Combine(data.Root, folder)).Incoming;
            if (result.GetValue(days) < 1 || result.GetValue(customers) < 1 || result.GetValue(sales) < 0)
            {
                throw new SluiceException("--days and --customers must be at least 1, --sales-per-day at least 0.");
            }

            foreach (var (name, value) in new[] { ("--move-ratio", result.GetValue(moves)), ("--dirty-ratio", result.GetValue(dirty)) })
            {
                if (value is < 0 or > 1) { throw new SluiceException($"{name} must be between 0 and 1, got {value}."); }
            }

            DateOnly? first = null;
            if (result.GetValue(start) is { } text)
            {
                first = DateOnly.TryParseExact(text, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var d)
                    ? d : throw new SluiceException($"--start '{text}' is not a date (YYYY-MM-DD).");
            }

            var written = new SalesWarehouseGenerator(incoming, new SalesWarehouseGeneratorOptions
            {
                Days = result.GetValue(days), Customers = result.GetValue(customers), SalesPerDay = result.GetValue(sales), Start = first,
                MoveRatio = result.GetValue(moves), DirtyRatio = result.GetValue(dirty), Seed = result.GetValue(seed),
            }, TimeProvider.System).Write();
            await Console.Out.WriteLineAsync($"wrote {written.Files.Count} files ({written.CustomerRows:N0} customer rows, {written.SalesRows:N0} sales rows, {written.Moves:N0} moves) to {incoming}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command VehicleFiles()
    {
        var files = new Option<int>("--files") { Description = "Files per round (event and status files alternate)", DefaultValueFactory = _ => 10 };
        var events = new Option<int>("--events-per-file") { Description = "Records per file", DefaultValueFactory = _ => 100 };
        var continuous = new Option<bool>("--continuous") { Description = "Keep writing a round every --interval seconds until Ctrl-C" };
        var interval = new Option<double>("--interval") { Description = "Seconds between rounds with --continuous", DefaultValueFactory = _ => 10 };
        var bad = new Option<double>("--bad-ratio") { Description = "Share of files broken on purpose (0..1)", DefaultValueFactory = _ => 0 };
        var late = new Option<double>("--late-ratio") { Description = "Share of events 1-4 days late (0..1)", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var now = new Option<string?>("--now") { Description = "The generated clock's start (ISO-8601): events lie around it (default: now)" };
        var command = new Command("vehicle-files", "Vehicle event and status JSON files into the recipe's drop folder") { files, events, continuous, interval, bad, late, seed, now };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var recipe = CliContext.LoadRecipe("vehicle-files");
            var folder = recipe.Pipelines.Select(p => p.Source).OfType<FilesSourceFactory>().FirstOrDefault()?.Options.Folder ?? recipe.Name;
            var data = new DataDirectory(DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)));
            var incoming = new DropFolder(Path.Combine(data.Root, folder)).Incoming;
            foreach (var (name, value) in new[] { ("--bad-ratio", result.GetValue(bad)), ("--late-ratio", result.GetValue(late)) })
            {
                if (value is < 0 or > 1) { throw new SluiceException($"{name} must be between 0 and 1, got {value}."); }
            }

            if (result.GetValue(files) < 1 || result.GetValue(events) < 0)
            {
                throw new SluiceException("--files must be at least 1 and --events-per-file at least 0.");
            }

            var generator = new VehicleFilesGenerator(incoming, new VehicleFilesGeneratorOptions
            {
                Files = result.GetValue(files), EventsPerFile = result.GetValue(events), BadRatio = result.GetValue(bad),
                LateRatio = result.GetValue(late), Seed = result.GetValue(seed),
                Now = result.GetValue(now) is null ? null : JobCommands.AsOf(null, result.GetValue(now), TimeProvider.System),
            }, TimeProvider.System);
            if (!result.GetValue(continuous))
            {
                var written = generator.WriteRound();
                await Console.Out.WriteLineAsync($"wrote {written.Count} files to {incoming}").ConfigureAwait(false);
                return 0;
            }

            await Console.Error.WriteLineAsync($"writing {result.GetValue(files)} files every {result.GetValue(interval)} s to {incoming}; Ctrl-C stops").ConfigureAwait(false);
            await generator.RunContinuousAsync(TimeSpan.FromSeconds(result.GetValue(interval)), w => Console.Out.WriteLine($"wrote {w.Count} files"), ct).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command RepeatReminder()
    {
        var cases = new Option<int>("--cases") { Description = "Cases; each gets a closure, a verdict and about one more event", DefaultValueFactory = _ => 100 };
        var output = new Option<string>("--out") { Description = "Folder for salesforce.ndjson and mongo.ndjson", DefaultValueFactory = _ => "repeat-reminder-events" };
        var now = new Option<string?>("--now") { Description = "The scenario's now (ISO-8601): about half the closures lie more than 30 days before it (default: now)" };
        var bad = new Option<double>("--bad-ratio") { Description = "Share of events broken on purpose (0..1)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var domain = new Option<string>("--domain") { Description = "Mail domain of the generated attorneys", DefaultValueFactory = _ => "example.test" };
        var command = new Command("repeat-reminder", "Salesforce-shaped and Mongo-shaped attorney events as NDJSON, one file per stream") { cases, output, now, bad, seed, domain };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            if (result.GetValue(bad) is < 0 or > 1) { throw new SluiceException("--bad-ratio must be between 0 and 1."); }
            if (result.GetValue(cases) < 1) { throw new SluiceException("--cases must be at least 1."); }
            var anchor = JobCommands.AsOf(null, result.GetValue(now), TimeProvider.System);
            var generator = new AttorneyEventsGenerator(new AttorneyEventsGeneratorOptions
            {
                Cases = result.GetValue(cases), Anchor = anchor, BadShare = result.GetValue(bad), Seed = result.GetValue(seed), Domain = result.GetValue(domain)!,
            });
            var folder = Path.GetFullPath(result.GetValue(output)!);
            foreach (var (stream, count) in AttorneyEventsFiles.Write(generator, folder))
            {
                await Console.Out.WriteLineAsync($"wrote {count} {stream} events to {Path.Combine(folder, stream + ".ndjson")}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command TenantAnalytics()
    {
        var tenants = new Option<int>("--tenants") { Description = "Tenants sending, each with its own writer token", DefaultValueFactory = _ => 3 };
        var rate = new Option<double>("--rate") { Description = "Events per second, all tenants together", DefaultValueFactory = _ => 100 };
        var burst = new Option<bool>("--burst") { Description = "Bursts: five times the rate for a second, then four quiet seconds" };
        var duration = new Option<double?>("--duration") { Description = "Seconds to run (default: until Ctrl-C)" };
        var url = new Option<string>("--url") { Description = "The running server", DefaultValueFactory = _ => "http://127.0.0.1:7070" };
        var tokenFile = new Option<string?>("--token-file") { Description = "'tenant token' per line; created (writer tokens in the data folder) when missing; default <data>/tenant-analytics/generator-tokens.txt" };
        var batch = new Option<int>("--batch") { Description = "Events per request", DefaultValueFactory = _ => 100 };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var command = new Command("tenant-analytics", "E-commerce events over HTTP to a running tenant-analytics server, per-tenant tokens") { tenants, rate, burst, duration, url, tokenFile, batch, seed };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            if (result.GetValue(tenants) < 1 || result.GetValue(rate) <= 0 || result.GetValue(batch) < 1)
            {
                throw new SluiceException("--tenants and --batch must be at least 1 and --rate more than 0.");
            }

            if (!Uri.TryCreate(result.GetValue(url), UriKind.Absolute, out var server))
            {
                throw new SluiceException($"--url: '{result.GetValue(url)}' is not an absolute URL (for example http://127.0.0.1:7070).");
            }

            // Beside the data folder whose store holds the tokens (0600), not in whatever folder the command ran from:
            // tokens of one data folder are worthless against another, and secrets do not belong in a work tree.
            var file = result.GetValue(tokenFile) ?? Path.Combine(CliContext.Folder(result).Root, "tenant-analytics", "generator-tokens.txt");
            var tokens = File.Exists(file) ? TenantAnalyticsGenerator.ReadTokenFile(file) : [];
            var wanted = Enumerable.Range(1, result.GetValue(tenants)).Select(i => $"tenant-{i}").ToList();
            var missing = wanted.Where(t => !tokens.ContainsKey(t)).ToList();
            if (missing.Count > 0)
            {
                using var services = CliContext.Services(result);
                var store = new Serving.Auth.TokenStore(services.Metadata, services.Time);
                var lines = missing.Select(t => $"{t} {store.Create(t, Serving.Auth.TokenRole.Writer, "generator").Token}").ToList();
                // Created 0600 before the tokens are written into it; a file that was there is made so too.
                Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
                Core.IO.PrivateFiles.CreateEmpty(file);
                await File.AppendAllLinesAsync(file, lines, ct).ConfigureAwait(false);
                if (!OperatingSystem.IsWindows()) { File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite); }
                await Console.Error.WriteLineAsync($"created writer tokens for {string.Join(", ", missing)} in {services.Data.Root}; saved in {file}").ConfigureAwait(false);
                tokens = TenantAnalyticsGenerator.ReadTokenFile(file);
            }

            var chosen = wanted.ToDictionary(t => t, t => tokens[t], StringComparer.Ordinal);
            var seconds = result.GetValue(duration);
            var generator = new TenantAnalyticsGenerator(new TenantAnalyticsGeneratorOptions
            {
                Url = server, Tokens = chosen, Rate = result.GetValue(rate), Burst = result.GetValue(burst),
                Duration = seconds is { } s ? TimeSpan.FromSeconds(s) : null, BatchSize = result.GetValue(batch), Seed = result.GetValue(seed),
            }, TimeProvider.System);
            await Console.Error.WriteLineAsync($"sending {result.GetValue(rate)} events/s{(result.GetValue(burst) ? " (in bursts)" : "")} for {chosen.Count} tenants to {server}; Ctrl-C stops").ConfigureAwait(false);
            var stats = await generator.RunAsync(s => Console.Error.WriteLine(s.ToString()), ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(stats.ToString()).ConfigureAwait(false);
            return stats.Failed == 0 ? 0 : 1;
        }));
        return command;
    }

    private static Command EngagementCdc()
    {
        var setup = new Option<bool>("--setup") { Description = "Create the recipe's tables (schema.sql) and seed the content catalogue" };
        var rate = new Option<double?>("--rate") { Description = "Insert engagement events at this many per second (0: as fast as Postgres takes them)" };
        var duration = new Option<double?>("--duration") { Description = "With --rate: stop after this many seconds (default: until Ctrl-C)" };
        var limit = new Option<long?>("--limit") { Description = "With --rate: stop after this many events" };
        var seed = new Option<int?>("--seed") { Description = "Random seed, for repeatable data" };
        var command = new Command("engagement-cdc", "Create and seed the engagement-cdc tables, or insert events into Postgres (PG* variables say where)") { setup, rate, duration, limit, seed };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var recipe = CliContext.LoadRecipe("engagement-cdc");
            var connection = recipe.Pipelines.Select(p => p.Source).OfType<PostgresCdcSourceFactory>().FirstOrDefault()?.Options.Connection
                ?? PostgresConnectionOptions.FromEnvironment();
            var generator = new EngagementGenerator(connection);
            if (!result.GetValue(setup) && result.GetValue(rate) is null)
            {
                throw new SluiceException("give --setup, --rate R, or both.");
            }

            if (result.GetValue(setup))
            {
                await generator.SetupAsync(Path.Combine(recipe.Folder, "schema.sql"), ct).ConfigureAwait(false);
                await Console.Out.WriteLineAsync($"tables ready and {EngagementGenerator.ContentRows} content rows seeded in {connection}").ConfigureAwait(false);
            }

            if (result.GetValue(rate) is { } r)
            {
                if (r < 0) { throw new SluiceException($"--rate must be 0 or more, got {r}."); }
                var options = new EngagementGeneratorOptions
                {
                    Rate = r,
                    Duration = result.GetValue(duration) is { } d ? TimeSpan.FromSeconds(d) : null,
                    Limit = result.GetValue(limit),
                    Seed = result.GetValue(seed),
                };
                var total = await generator.RunAsync(options, (n, perSecond) => Console.Out.WriteLine($"inserted {n} events ({perSecond:0} per second)"), ct).ConfigureAwait(false);
                await Console.Out.WriteLineAsync($"done: inserted {total} events").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }
}
