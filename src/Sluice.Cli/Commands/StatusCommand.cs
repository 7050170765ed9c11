using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sluice.Core.Status;
using Spectre.Console;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice status</c>: the figures of the running processes of a data folder, once or refreshed like top.</summary>
internal static class StatusCommand
{
    private static readonly JsonSerializerOptions Indented = new(ManagementClient.Json) { WriteIndented = true };

    public static Command Create()
    {
        var watch = new Option<bool>("--watch", "-w") { Description = "Refresh until Ctrl-C" };
        var interval = new Option<double>("--interval") { Description = "Seconds between refreshes with --watch", DefaultValueFactory = _ => 2 };
        var format = new Option<string>("--format") { Description = "table or json (times in UTC, ISO-8601 with Z)", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var command = new Command("status", "Show what a running 'sluice run' or 'sluice demo' of this data folder is doing: pipelines, sinks, lag, slots, jobs, dead letters")
        {
            watch, interval, format,
        };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var seconds = result.GetValue(interval);
            if (seconds is < 0.2 or > 3600) { throw new Core.SluiceException($"--interval: {seconds.ToString(CultureInfo.InvariantCulture)} is not between 0.2 and 3600 seconds"); }
            var json = result.GetValue(format) == "json";
            if (CliContext.IsCluster(result)) { return await ClusterAsync(result, json, result.GetValue(watch), seconds, ct).ConfigureAwait(false); }
            using var client = ManagementClient.Connect(CliContext.Folder(result));
            do
            {
                var snapshots = new List<StatusSnapshot>();
                foreach (var p in client.Processes) { snapshots.Add(await client.StatusAsync(p, ct).ConfigureAwait(false)); }
                if (json)
                {
                    await Console.Out.WriteLineAsync(JsonSerializer.Serialize(Merge(client, snapshots), Indented)).ConfigureAwait(false);
                }
                else
                {
                    if (result.GetValue(watch)) { AnsiConsole.Clear(); }
                    Render(client, snapshots);
                }

                if (!result.GetValue(watch)) { return 0; }
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return 0;
                }
            }
            while (true);
        }));
        return command;
    }

    /// <summary>The cluster's workers and lags from the shared store (<see cref="ClusterStatusView"/>), once or refreshed.</summary>
    private static async Task<int> ClusterAsync(System.CommandLine.ParseResult result, bool json, bool watch, double seconds, CancellationToken ct)
    {
        using var services = CliContext.Services(result);
        do
        {
            var workers = Cluster.WorkerRegistry.List(services.Metadata, services.Time);
            var snapshots = Connectors.Postgres.PgSnapshotRequests.Views(services, ClusterStatusView.SnapshotsShown);
            var at = services.Time.GetUtcNow().UtcDateTime;
            if (json)
            {
                await Console.Out.WriteLineAsync(JsonSerializer.Serialize(ClusterStatusView.Json(workers, snapshots, at), Indented)).ConfigureAwait(false);
            }
            else
            {
                if (watch) { AnsiConsole.Clear(); }
                ClusterStatusView.Render(workers, snapshots, at);
            }

            if (!watch) { return 0; }
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return 0;
            }
        }
        while (true);
    }

    private static object Merge(ManagementClient client, List<StatusSnapshot> snapshots) => new
    {
        at = snapshots.Max(s => s.At),
        processes = client.Processes.Zip(snapshots, (p, s) => new { pid = s.Pid, url = p.Url, started = s.Started }),
        pipelines = snapshots.SelectMany(s => s.Pipelines.Select(p => new
        {
            p.Recipe, p.Pipeline, p.Source, p.State, p.Condition, p.LastError, p.LastErrorAt, p.RecordsIn, p.BatchesIn,
            recordsInPerSecond = PerSecond(p.RecordsIn, s.At, p.History, x => x.RecordsIn),
            p.LastReadAt, p.Position, p.Backlog, p.Slot, p.Sinks, p.Snapshots,
        })),
        jobs = snapshots.SelectMany(s => s.Jobs),
        deadLetters = snapshots.SelectMany(s => s.DeadLetters),
        alerts = snapshots.SelectMany(s => s.Alerts),
        workers = snapshots.SelectMany(s => s.Workers).DistinctBy(w => w.Id),
        snapshots = snapshots.SelectMany(s => s.Snapshots).DistinctBy(r => r.Id),
    };

    private static void Render(ManagementClient client, List<StatusSnapshot> snapshots)
    {
        // Piped into a file or another program, a table wrapped to 80 columns helps nobody: one row per line.
        if (Console.IsOutputRedirected) { AnsiConsole.Profile.Width = 240; }
        var at = snapshots.Max(s => s.At);
        AnsiConsole.MarkupLine($"[bold]sluice status[/]  {Time(at)}  " + string.Join("  ", client.Processes.Zip(snapshots, (p, s) => $"pid {s.Pid} {Markup.Escape(p.Url)} up {Ago(s.Started, at)}")));
        var pipelines = Table("pipeline", "source", "state", "records in", "in/s", "batches", "backlog", "last read");
        var sinks = Table("pipeline", "sink", "records out", "out/s", "writes", "lag (pos)", "lag (s)", "last commit", "condition");
        var slots = Table("pipeline", "slot", "confirmed LSN", "lag bytes", "lag s", "wal_status", "safe WAL bytes", "checked");
        var tableSnapshots = Table("pipeline", "snapshot", "table", "kind", "state", "rows read", "of", "chunks", "superseded");
        var problems = new List<string>();
        foreach (var s in snapshots)
        {
            foreach (var p in s.Pipelines)
            {
                var name = $"{p.Recipe}/{p.Pipeline}";
                pipelines.AddRow(Cell(name), Cell(p.Source), State(p.State), Count(p.RecordsIn), Cell(Rate(p.RecordsIn, s.At, p.History, x => x.RecordsIn)),
                    Count(p.BatchesIn), Cell(p.Backlog is { } b ? $"{b.Value.ToString("N0", CultureInfo.InvariantCulture)} {b.Unit}" : "-"), Cell(Ago(p.LastReadAt, s.At)));
                foreach (var k in p.Sinks)
                {
                    sinks.AddRow(Cell(name), Cell(k.Sink), Count(k.RecordsOut), Cell(p.Sinks.Count == 1 ? Rate(k.RecordsOut, s.At, p.History, x => x.RecordsOut) : "-"),
                        Count(k.BatchesOut), Cell(k.LagPositions?.ToString("N0", CultureInfo.InvariantCulture) ?? "-"), Cell(k.LagSeconds.ToString("0.#", CultureInfo.InvariantCulture)),
                        Cell(Ago(k.LastCommitAt, s.At)), Cell(string.Join("; ", new[] { k.Breaker is null or "closed" ? null : $"breaker {k.Breaker}", k.Retry is { } r ? $"retrying (attempt {r.Attempt}): {r.LastError}" : null, k.Condition }.OfType<string>())));
                }

                if (p.Slot is { } slot)
                {
                    slots.AddRow(Cell(name), Cell(slot.Slot), Count(slot.ConfirmedLsn), Count(slot.LagBytes), Cell(slot.LagSeconds.ToString("0.#", CultureInfo.InvariantCulture)),
                        Cell(slot.WalStatus), Cell(slot.SafeWalBytes?.ToString("N0", CultureInfo.InvariantCulture) ?? "unlimited"), Cell(Ago(slot.CheckedAt, s.At)));
                }

                foreach (var t in p.Snapshots ?? [])
                {
                    tableSnapshots.AddRow(Cell(name), Count(t.Id), Cell(t.Table), Cell(t.Kind), Cell(t.Error is null ? t.State : $"{t.State}: {t.Error}"), Count(t.RowsRead),
                        Cell(t.Total?.ToString("N0", CultureInfo.InvariantCulture) ?? "-"), Count(t.Chunks), Count(t.Superseded));
                }

                if (p.Condition is { } c) { problems.Add($"{name}: {c}"); }
                if (p.LastError is { } e) { problems.Add($"{name}: failed {Ago(p.LastErrorAt, s.At)}: {e}"); }
            }
        }

        AnsiConsole.Write(pipelines);
        AnsiConsole.Write(sinks);
        if (slots.Rows.Count > 0) { AnsiConsole.Write(slots); }
        if (tableSnapshots.Rows.Count > 0) { AnsiConsole.Write(tableSnapshots); }
        var jobs = Table("job", "schedule", "last run", "took", "outcome", "next run", "runs", "failed");
        foreach (var j in snapshots.SelectMany(s => s.Jobs))
        {
            jobs.AddRow(Cell($"{j.Recipe}/{j.Job}"), Cell(j.Schedule ?? "after load / by hand"), Cell(j.Running ? "running now" : Time(j.LastRunAt)),
                Cell(j.LastDurationSeconds is { } d ? $"{d:0.##} s" : "-"), Cell(j.LastOutcome ?? "-"), Cell(Time(j.NextRunAt)), Count(j.Runs), Count(j.Failures));
        }

        if (jobs.Rows.Count > 0) { AnsiConsole.Write(jobs); }
        var letters = Table("dead letters (pending)", "reason", "count");
        foreach (var d in snapshots.SelectMany(s => s.DeadLetters)) { letters.AddRow(Cell(d.Source), Cell(d.Reason), Count(d.Count)); }
        if (letters.Rows.Count > 0) { AnsiConsole.Write(letters); }
        var alerts = Table("alert", "kind", "severity", "state", "since", "message");
        foreach (var a in snapshots.SelectMany(s => s.Alerts))
        {
            alerts.AddRow(Cell($"{a.Recipe}/{a.Alert}"), Cell(a.Kind), Cell(a.Severity), State(a.State), Cell(Ago(a.Since, at)), Cell(a.Message));
        }

        if (alerts.Rows.Count > 0) { AnsiConsole.Write(alerts); }
        foreach (var p in problems) { AnsiConsole.MarkupLine($"[red]{Markup.Escape(p)}[/]"); }
    }

    /// <summary>Records per second since the newest history sample at least a second old (the samples are 10 s apart).</summary>
    private static string Rate(long now, DateTime at, IReadOnlyList<StatusSample>? history, Func<StatusSample, long> value) =>
        PerSecond(now, at, history, value)?.ToString("0.#", CultureInfo.InvariantCulture) ?? "-";

    private static double? PerSecond(long now, DateTime at, IReadOnlyList<StatusSample>? history, Func<StatusSample, long> value)
    {
        var sample = history?.LastOrDefault(h => (at - h.At).TotalSeconds >= 1);
        return sample is null ? null : Math.Round((now - value(sample)) / (at - sample.At).TotalSeconds, 3);
    }

    private static Table Table(params string[] columns)
    {
        var table = new Table { Border = TableBorder.Simple };
        foreach (var c in columns) { table.AddColumn(new TableColumn(c)); }
        table.Columns[0].NoWrap();
        return table;
    }

    private static Markup Cell(string text) => new(Markup.Escape(text));

    private static Markup Count(long n) => new(n.ToString("N0", CultureInfo.InvariantCulture));

    private static Markup State(string state) => new(state switch
    {
        "running" => "[green]running[/]",
        "failed" => "[red]failed[/]",
        "ok" => "[green]ok[/]",
        "firing" => "[red]firing[/]",
        _ => $"[yellow]{Markup.Escape(state)}[/]",
    });

    private static string Time(DateTime? utc) => utc?.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-";

    private static string Ago(DateTime? then, DateTime now)
    {
        if (then is not { } t) { return "-"; }
        var d = now - t;
        return d.TotalSeconds < 1 ? "now" : d.TotalMinutes < 1 ? $"{d.TotalSeconds:0} s ago" : d.TotalHours < 1 ? $"{d.TotalMinutes:0} min ago" : $"{d.TotalHours:0.#} h ago";
    }
}
