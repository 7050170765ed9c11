using System.CommandLine;
using Sluice.Bench;

namespace Sluice.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Benchmarks, each measured against a reference in the same run (see docs/BENCHMARKS.md)");
        var events = new Option<int>("--events") { Description = "Vehicle events to generate", DefaultValueFactory = _ => 2_000_000 };
        var rounds = new Option<int>("--rounds") { Description = "Ingest rounds (Sluice then DuckDB each); the median round is reported", DefaultValueFactory = _ => 3 };
        rounds.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) { r.AddError("--rounds must be at least 1"); } });
        var files = new Command("files", "File ingest vs DuckDB read_json + COPY, and the daily summary vs plain DuckDB SQL") { events, rounds };
        files.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "files");
            var report = await BenchProgress.RunAsync((log, progress) => FilesBenchmark.RunAsync(root, result.GetValue(events), result.GetValue(rounds), log, ct, progress)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        command.Subcommands.Add(files);
        command.Subcommands.Add(Reminders());
        command.Subcommands.Add(Ingest());
        command.Subcommands.Add(IngestLoadgen());
        command.Subcommands.Add(IngestReference());
        command.Subcommands.Add(Cdc());
        command.Subcommands.Add(Warehouse());
        command.Subcommands.Add(Cluster());
        return command;
    }

    private static Command Cluster()
    {
        var defaults = new ClusterBenchmarkOptions();
        var events = new Option<long?>("--events") { Description = $"Events sent to each mode in the cost window (default {defaults.Events:N0})" };
        var rate = new Option<double?>("--rate") { Description = $"Events per second in the cost window (default {defaults.Rate:N0})" };
        var seconds = new Option<double?>("--seconds") { Description = $"Measured seconds of each throughput phase (default {defaults.Seconds:N0})" };
        var warmUp = new Option<double?>("--warmup") { Description = $"Unmeasured seconds of load before each window (default {defaults.WarmUpSeconds:N0})" };
        var share = new Option<double?>("--share") { Description = $"CPUs each worker may use in the throughput phases, a cgroup quota; 0: none (default {defaults.Share})" };
        var workers = new Option<int?>("--workers") { Description = $"Workers of the cluster; throughput with 1 .. this many (default {defaults.Workers})" };
        var quick = new Option<bool>("--quick") { Description = "A run of seconds that prints every figure (for a smoke test; the numbers mean little)" };
        var command = new Command("cluster", "HTTP ingest to PostgreSQL in one process vs on cluster workers (JetStream R3 + shared metadata store): CPU per event, end-to-end and ack latency at the same load; throughput of 1..N workers each held to a CPU share (needs PG*)")
        {
            events, rate, seconds, warmUp, share, workers, quick,
        };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "cluster");
            var o = result.GetValue(quick) ? ClusterBenchmarkOptions.Quick : defaults;
            o = o with
            {
                Events = result.GetValue(events) ?? o.Events, Rate = result.GetValue(rate) ?? o.Rate, Seconds = result.GetValue(seconds) ?? o.Seconds,
                WarmUpSeconds = result.GetValue(warmUp) ?? o.WarmUpSeconds, Share = result.GetValue(share) ?? o.Share, Workers = result.GetValue(workers) ?? o.Workers,
            };
            var report = await BenchProgress.RunAsync((log, progress) => ClusterBenchmark.RunAsync(Path.GetFullPath(root), o, log, ct, progress)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            // Missed targets are results, shown as MISS; only an error of the run exits non-zero.
            return 0;
        }));
        return command;
    }

    private static Command Warehouse()
    {
        var customers = new Option<int>("--customers") { Description = "Customers on day 1", DefaultValueFactory = _ => 1_000_000 };
        var sales = new Option<long>("--sales") { Description = "Sales rows over all days", DefaultValueFactory = _ => 10_000_000 };
        var days = new Option<int>("--days") { Description = "Daily files", DefaultValueFactory = _ => 30 };
        var engine = new Option<string>("--engine") { Description = "duckdb, postgres or both", DefaultValueFactory = _ => "both" };
        var memory = new Option<string>("--duckdb-memory") { Description = "DuckDB memory limit for the run (the process peaks at about this plus 300 MiB)", DefaultValueFactory = _ => "512MB" };
        var keys = new Option<int>("--snapshot-keys") { Description = "Keys of the snapshot part (check and timestamp strategies, a full export a day); 0 leaves it out", DefaultValueFactory = _ => 1_000_000 };
        var snapshotOnly = new Option<bool>("--snapshot-only") { Description = "Only the snapshot part" };
        var database = new Option<string>("--pg-database") { Description = "PostgreSQL database of the run, dropped and created again (two runs at once need two)", DefaultValueFactory = _ => "sluice_bench_warehouse" };
        keys.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 0) { r.AddError("--snapshot-keys must be 0 or more"); } });
        var command = new Command("warehouse", "sales-warehouse load + models per engine, and the last day's SCD2 merge vs the same merge written by hand; then a snapshot of --snapshot-keys keys per strategy vs its hand-written merge")
        {
            customers, sales, days, engine, memory, keys, snapshotOnly, database,
        };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "warehouse");
            var which = result.GetValue(engine)!;
            IReadOnlyList<Models.WarehouseEngine> engines = which == "both" ? [Models.WarehouseEngine.DuckDb, Models.WarehouseEngine.Postgres]
                : [Models.ModelsOptions.ParseEngine(which) ?? throw new Core.SluiceException($"--engine '{which}': expected duckdb, postgres or both.")];
            if (result.GetValue(days) < 2 || result.GetValue(customers) < 1 || result.GetValue(sales) < result.GetValue(days))
            {
                throw new Core.SluiceException("--days must be at least 2, --customers at least 1 and --sales at least --days.");
            }

            if (result.GetValue(snapshotOnly) && result.GetValue(keys) == 0) { throw new Core.SluiceException("--snapshot-only needs --snapshot-keys above 0."); }
            var report = await BenchProgress.RunAsync((log, progress) => WarehouseBenchmark.RunAsync(root, new WarehouseBenchmarkOptions
            {
                Customers = result.GetValue(customers), Sales = result.GetValue(sales), Days = result.GetValue(days), Engines = engines, DuckDbMemory = result.GetValue(memory)!,
                SnapshotKeys = result.GetValue(keys), SnapshotOnly = result.GetValue(snapshotOnly), PostgresDatabase = result.GetValue(database)!, Progress = progress,
            }, log, ct)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Ingest()
    {
        var seconds = new Option<int>("--seconds") { Description = "Seconds per throughput phase", DefaultValueFactory = _ => 10 };
        var overload = new Option<int>("--overload-seconds") { Description = "Seconds of overload at twice the sustainable rate", DefaultValueFactory = _ => 60 };
        var concurrency = new Option<int>("--concurrency") { Description = "Requests in flight (single events: four times as many)", DefaultValueFactory = _ => 16 };
        var command = new Command("ingest", "HTTP ingest (tenant-analytics) vs a minimal Kestrel + group-commit fsync endpoint, load from a separate process") { seconds, overload, concurrency };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "ingest");
            var options = new IngestBenchmarkOptions { Seconds = result.GetValue(seconds), OverloadSeconds = result.GetValue(overload), Concurrency = result.GetValue(concurrency) };
            var report = await BenchProgress.RunAsync((log, progress) => IngestBenchmark.RunAsync(Path.GetFullPath(root), options, log, ct, progress)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command IngestLoadgen()
    {
        var url = new Option<string>("--url") { Required = true };
        var token = new Option<string>("--token") { Required = true };
        var tenant = new Option<string>("--tenant") { DefaultValueFactory = _ => "bench" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1000 };
        var concurrency = new Option<int>("--concurrency") { DefaultValueFactory = _ => 16 };
        var seconds = new Option<double>("--seconds") { DefaultValueFactory = _ => 10 };
        var rate = new Option<double?>("--rate") { Description = "Events per second (default: as fast as answered)" };
        var honour = new Option<bool>("--honour-retry-after") { Description = "Wait as long as a 429/503's Retry-After says (default: 50 ms, to keep the pressure on)" };
        var command = new Command("ingest-loadgen", "Load generator of bench ingest (prints one JSON line)") { url, token, tenant, batch, concurrency, seconds, rate, honour };
        command.Hidden = true;
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var options = new LoadOptions(new Uri(result.GetValue(url)!), result.GetValue(token)!, result.GetValue(tenant)!, result.GetValue(batch),
                result.GetValue(concurrency), TimeSpan.FromSeconds(result.GetValue(seconds)), result.GetValue(rate), result.GetValue(honour));
            var load = await IngestLoadGenerator.RunAsync(options, ct).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(load.ToJson()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command IngestReference()
    {
        var folder = new Option<string>("--folder") { Required = true };
        var port = new Option<int>("--port") { Required = true };
        var command = new Command("ingest-reference", "Reference server of bench ingest: Kestrel + group-commit fsync, nothing else") { folder, port };
        command.Hidden = true;
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            await ReferenceIngestServer.RunAsync(result.GetValue(folder)!, result.GetValue(port), ct).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Reminders()
    {
        var cases = new Option<int>("--cases") { Description = "Cases to generate (about three events each)", DefaultValueFactory = _ => 1_000_000 };
        var reuse = new Option<bool>("--reuse") { Description = "Evaluate again over the events an earlier run landed (skips generation and normalisation)" };
        var command = new Command("reminders", "repeat-reminder: normalisation rate, and rule evaluation with 10,000 reminders due among a million cases") { cases, reuse };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "reminders");
            var report = await BenchProgress.RunAsync((log, progress) => RemindersBenchmark.RunAsync(root, result.GetValue(cases), log, ct, result.GetValue(reuse), progress)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Cdc()
    {
        var rate = new Option<double>("--rate") { Description = "Inserts per second, the same for both pipelines", DefaultValueFactory = _ => 1000 };
        var seconds = new Option<double>("--seconds") { Description = "Measured window per pipeline, in seconds", DefaultValueFactory = _ => 30 };
        var warmUp = new Option<double>("--warmup") { Description = "Unmeasured streaming before each window, in seconds", DefaultValueFactory = _ => 15 };
        rate.Validators.Add(r => { if (r.GetValueOrDefault<double>() <= 0) { r.AddError("--rate must be above 0"); } });
        seconds.Validators.Add(r => { if (r.GetValueOrDefault<double>() < 5) { r.AddError("--seconds must be at least 5"); } });
        warmUp.Validators.Add(r => { if (r.GetValueOrDefault<double>() < 0) { r.AddError("--warmup must be 0 or more"); } });
        var cdc = new Command("cdc", "CPU per change of Sluice against the Postgres WAL sender serving its slot, at a fixed insert rate: engagement-cdc (three sinks) and a one-sink mirror; commit-to-Redis latency (needs PG*, REDIS_URL, CLICKHOUSE_URL)") { rate, seconds, warmUp };
        cdc.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var root = Path.Combine(Core.DataDirectory.ResolveRoot(result.GetValue(CliContext.Data)), "bench", "cdc");
            var options = new CdcBenchmarkOptions { Rate = result.GetValue(rate), Seconds = result.GetValue(seconds), WarmUpSeconds = result.GetValue(warmUp) };
            var report = await CdcBenchView.RunAsync(Path.GetFullPath(root), options, ct).ConfigureAwait(false);
            CdcBenchView.Show(report);
            await Console.Out.WriteLineAsync(report.ToMarkdown()).ConfigureAwait(false);
            // Missed targets are results, shown as MISS; only an error of the run exits non-zero.
            return 0;
        }));
        return cdc;
    }
}
