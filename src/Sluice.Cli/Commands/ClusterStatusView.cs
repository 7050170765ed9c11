using System.Globalization;
using System.Text.Json;
using Sluice.Cluster;
using Sluice.Connectors.Postgres;
using Sluice.Core.Status;
using Spectre.Console;

namespace Sluice.Cli.Commands;

/// <summary>
/// <c>sluice status --cluster</c>: the cluster's workers from the shared registry (id, host, heartbeat age, health, what
/// each holds), each pipeline's consumer lag as the freshest live worker read it, and the CDC snapshots asked for
/// (<c>sluice cdc snapshot</c>, the rest of an interrupted initial snapshot) with the progress the slot holders record
/// and the worker running each; from any machine, no worker's port needed.
/// </summary>
internal static class ClusterStatusView
{
    /// <summary>The latest snapshot requests shown (newest first), as many as a single process's status shows of a slot.</summary>
    public const int SnapshotsShown = PostgresCdcSource.SnapshotsShown;

    public static object Json(IReadOnlyList<WorkerView> workers, IReadOnlyList<SnapshotRequestView> snapshots, DateTime at) => new
    {
        at,
        workers,
        pipelines = Lags(workers).Select(l => new { pipeline = l.Lag.Pipeline, backlog = new Backlog(l.Lag.Events, "events in JetStream"), reportedBy = l.Worker.Id, reportedAt = l.Worker.HeartbeatAt }),
        snapshots,
    };

    public static void Render(IReadOnlyList<WorkerView> workers, IReadOnlyList<SnapshotRequestView> snapshots, DateTime at)
    {
        if (Console.IsOutputRedirected) { AnsiConsole.Profile.Width = 240; }
        AnsiConsole.MarkupLine($"[bold]sluice status --cluster[/]  {at.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)}  {workers.Count(w => w.Health is "green" or "red")} worker(s) beating, {workers.Count(w => w.Health == "lost")} lost");
        var table = new Table { Border = TableBorder.Simple };
        foreach (var c in new[] { "worker", "host", "pid", "port", "recipe", "heartbeat", "health", "holds" }) { table.AddColumn(c); }
        foreach (var w in workers)
        {
            table.AddRow(Cell(w.Id), Cell(w.Host), Cell(w.Pid.ToString(CultureInfo.InvariantCulture)), Cell(w.Port.ToString(CultureInfo.InvariantCulture)), Cell(w.Recipe),
                Cell($"{w.HeartbeatAgeSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s ago"), Health(w), Cell(Holds(w)));
        }

        AnsiConsole.Write(table);
        var lags = new Table { Border = TableBorder.Simple };
        foreach (var c in new[] { "pipeline", "consumer lag", "read by", "at" }) { lags.AddColumn(c); }
        foreach (var (worker, lag) in Lags(workers))
        {
            lags.AddRow(Cell(lag.Pipeline), Cell($"{lag.Events.ToString("N0", CultureInfo.InvariantCulture)} events in JetStream"), Cell(worker.Id),
                Cell(worker.HeartbeatAt.ToString("HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        }

        if (lags.Rows.Count > 0) { AnsiConsole.Write(lags); }
        var requests = new Table { Border = TableBorder.Simple };
        foreach (var c in new[] { "pipeline", "snapshot", "table", "kind", "state", "rows read", "of", "chunks", "superseded", "worker", "updated" }) { requests.AddColumn(c); }
        foreach (var s in snapshots)
        {
            requests.AddRow(Cell(s.Pipeline), Cell(s.Id.ToString(CultureInfo.InvariantCulture)), Cell(s.Table), Cell(s.Kind),
                Cell(s.Error is null ? s.State : $"{s.State}: {s.Error}"), Cell(s.RowsRead.ToString("N0", CultureInfo.InvariantCulture)),
                Cell(s.Total?.ToString("N0", CultureInfo.InvariantCulture) ?? "-"), Cell(s.Chunks.ToString("N0", CultureInfo.InvariantCulture)),
                Cell(s.Superseded.ToString("N0", CultureInfo.InvariantCulture)), Cell(s.Worker ?? "-"), Cell(s.UpdatedAt.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)));
        }

        if (requests.Rows.Count > 0) { AnsiConsole.Write(requests); }
    }

    /// <summary>"partitions: 1, 2; slot: s" or "-".</summary>
    public static string Holds(WorkerView worker) =>
        worker.Holds.Count == 0 ? "-" : string.Join("; ", worker.Holds.Select(h => $"{h.Key}: {string.Join(", ", h.Value)}"));

    /// <summary>Each pipeline's lag from the live worker that read it last (the lag is the consumer's, the same for every worker).</summary>
    private static IEnumerable<(WorkerView Worker, PipelineLag Lag)> Lags(IReadOnlyList<WorkerView> workers) =>
        workers.Where(w => w.Health is "green" or "red")
            .SelectMany(w => w.Lags.Select(l => (Worker: w, Lag: l)))
            .GroupBy(x => x.Lag.Pipeline, StringComparer.Ordinal)
            .Select(g => g.OrderByDescending(x => x.Worker.HeartbeatAt).First())
            .OrderBy(x => x.Lag.Pipeline, StringComparer.Ordinal);

    private static Markup Health(WorkerView w) => new(w.Health switch
    {
        "green" => "[green]green[/]",
        "red" => $"[red]red: {Markup.Escape(w.Reason ?? "")}[/]",
        "lost" => $"[red]lost: {Markup.Escape(w.Reason ?? "")}[/]",
        _ => $"[yellow]{Markup.Escape(w.Health)}[/]",
    });

    private static Markup Cell(string text) => new(Markup.Escape(text));
}
