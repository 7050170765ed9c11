using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Status;

namespace Sluice.Cluster;

/// <summary>Who a worker is, as it registers: its id (<see cref="WorkerIdentity"/>), machine, process, ingest port, recipe and Sluice version.</summary>
public sealed record WorkerInfo(string Id, string Host, int Pid, int Port, string Recipe, string Version);

/// <summary>
/// The cluster's workers in the shared metadata store (<c>cluster_workers</c>): each worker registers at start, beats
/// every <see cref="HeartbeatEvery"/> with its health, what it holds and the consumer lag it reads, and is shown as lost
/// once its heartbeat is older than <see cref="LostAfter"/>. Other parts of cluster mode publish what they hold through
/// <see cref="Hold"/> and <see cref="Release"/> (partitions, the CDC slot, job leases, file claims, pulls); the next heartbeat writes it.
/// </summary>
public sealed class WorkerRegistry
{
    public const string Component = "cluster_workers";

    /// <summary>How often a worker beats.</summary>
    public static readonly TimeSpan HeartbeatEvery = TimeSpan.FromSeconds(2);

    /// <summary>A worker silent this long (five heartbeats) is shown as lost.</summary>
    public static readonly TimeSpan LostAfter = TimeSpan.FromSeconds(10);

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS cluster_workers (
            id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, port INTEGER NOT NULL, recipe TEXT NOT NULL,
            version TEXT NOT NULL, started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, health TEXT NOT NULL,
            reason TEXT NULL, holds TEXT NOT NULL, lags TEXT NOT NULL);
        """,
    ];

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, IReadOnlyList<string>> _holds = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _started;

    public WorkerRegistry(MetadataStore store, TimeProvider time, WorkerInfo worker, ILoggerFactory logging)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(worker);
        ArgumentNullException.ThrowIfNull(logging);
        _store = store;
        _time = time;
        Worker = worker;
        _log = logging.CreateLogger("Sluice.Cluster");
        _started = time.GetUtcNow();
        store.Migrate(Component, Migrations);
    }

    public WorkerInfo Worker { get; private set; }

    /// <summary>
    /// The port the worker's HTTP server bound, once it has (with <c>--port 0</c> the one the system chose, not the 0
    /// it registered with): the next heartbeat writes it.
    /// </summary>
    public void Bound(int port) => Worker = Worker with { Port = port };

    /// <summary>
    /// Enters the worker in the registry. A live worker of another process holding the same id is refused (its sink
    /// checkpoints would be overwritten): a fresh heartbeat from another machine, or from a process of this machine that runs.
    /// </summary>
    public void Register()
    {
        var now = _time.GetUtcNow();
        if (List(_store, _time).FirstOrDefault(w => w.Id == Worker.Id) is { } other && other.Health is not ("lost" or "stopped")
            && (other.Host != Worker.Host || other.Pid != Worker.Pid) && (other.Host != Worker.Host || IsRunning(other.Pid)))
        {
            throw new SluiceException($"cluster: worker id '{Worker.Id}' is in use by pid {other.Pid} on {other.Host} (heartbeat {other.HeartbeatAgeSeconds:0} s ago); give each worker its own data folder or {WorkerIdentity.Variable}");
        }

        Write("green", null, [], now);
        ClusterLog.Registered(_log, Worker.Id, Worker.Recipe, _store.Path);
    }

    /// <summary>What this worker holds of one kind (partitions, a CDC slot, job leases), replacing what it held of that kind; empty: nothing.</summary>
    public void SetHolding(string kind, IEnumerable<string> items)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentNullException.ThrowIfNull(items);
        var list = items.Order(StringComparer.Ordinal).ToList();
        lock (_gate)
        {
            if (list.Count == 0) { _holds.Remove(kind); }
            else { _holds[kind] = list; }
        }
    }

    /// <summary>
    /// One more thing this worker holds of <paramref name="kind"/> (a partition, a slot, a job's lease, a file's claim, a
    /// pull), beside what other holders of that kind hold: each holder adds and removes its own items as it takes and
    /// loses them, so two pipelines of one kind never overwrite each other's.
    /// </summary>
    public void Hold(string kind, string item)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentException.ThrowIfNullOrEmpty(item);
        lock (_gate)
        {
            _holds[kind] = _holds.TryGetValue(kind, out var held) ? [.. held.Append(item).Distinct().Order(StringComparer.Ordinal)] : [item];
        }
    }

    /// <summary>This worker no longer holds <paramref name="item"/> of <paramref name="kind"/> (released, lost or done).</summary>
    public void Release(string kind, string item)
    {
        lock (_gate)
        {
            if (!_holds.TryGetValue(kind, out var held)) { return; }
            var left = held.Where(h => h != item).ToList();
            if (left.Count == 0) { _holds.Remove(kind); }
            else { _holds[kind] = left; }
        }
    }

    /// <summary>What this worker holds now, by kind (written with the next heartbeat).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Holding
    {
        get { lock (_gate) { return new SortedDictionary<string, IReadOnlyList<string>>(_holds, StringComparer.Ordinal); } }
    }

    /// <summary>One heartbeat: health (red with <paramref name="red"/>'s reason, else green), what it holds, the lags it read.</summary>
    public void Heartbeat(string? red, IReadOnlyList<PipelineLag> lags) => Write(red is null ? "green" : "red", red, lags, _time.GetUtcNow());

    /// <summary>A clean stop: the worker is shown as stopped, holding nothing, rather than lost.</summary>
    public void Leave()
    {
        lock (_gate) { _holds.Clear(); }
        Write("stopped", null, [], _time.GetUtcNow());
    }

    /// <summary>
    /// Beats every <see cref="HeartbeatEvery"/> until cancelled, with what <paramref name="observe"/> reports. A beat the
    /// store refuses (Postgres restarting) is a warning and the next one tries again; the others see the worker's age grow.
    /// </summary>
    public async Task RunAsync(Func<(string? Red, IReadOnlyList<PipelineLag> Lags)> observe, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(observe);
        using var timer = new PeriodicTimer(HeartbeatEvery, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    var (red, lags) = observe();
                    Heartbeat(red, lags);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Whatever fails one beat must not end the beating: a worker that stops beating is shown lost.
                    ClusterLog.HeartbeatFailed(_log, Worker.Id, $"{e.GetType().Name}: {e.Message}");
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopping
        }
    }

    /// <summary>Every registered worker, by id, as of now: a heartbeat older than <paramref name="lostAfter"/> (default <see cref="LostAfter"/>) shows as lost.</summary>
    public static IReadOnlyList<WorkerView> List(MetadataStore store, TimeProvider time, TimeSpan? lostAfter = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(time);
        store.Migrate(Component, Migrations);
        var now = time.GetUtcNow();
        var limit = lostAfter ?? LostAfter;
        var workers = new List<WorkerView>();
        using var c = store.Connect();
        using var cmd = c.Command("SELECT id, host, pid, port, recipe, version, started_at, heartbeat_at, health, reason, holds, lags FROM cluster_workers ORDER BY id");
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            var beat = SqliteExtensions.ParseIso(r.GetString(7));
            var age = Math.Max(0, (now - beat).TotalSeconds);
            var health = r.GetString(8);
            var reason = r.IsDBNull(9) ? null : r.GetString(9);
            if (health != "stopped" && now - beat > limit)
            {
                reason = $"no heartbeat for {age:0} s (limit {limit.TotalSeconds:0} s)";
                health = "lost";
            }

            workers.Add(new WorkerView(
                r.GetString(0), r.GetString(1), (int)r.GetInt64(2), (int)r.GetInt64(3), r.GetString(4), r.GetString(5),
                SqliteExtensions.ParseIso(r.GetString(6)).UtcDateTime, beat.UtcDateTime, Math.Round(age, 1), health, reason,
                JsonSerializer.Deserialize<Dictionary<string, IReadOnlyList<string>>>(r.GetString(10)) ?? [],
                JsonSerializer.Deserialize<List<PipelineLag>>(r.GetString(11)) ?? []));
        }

        return workers;
    }

    private void Write(string health, string? reason, IReadOnlyList<PipelineLag> lags, DateTimeOffset now)
    {
        string holds;
        lock (_gate) { holds = JsonSerializer.Serialize(_holds); }
        using var c = _store.Connect();
        c.Execute(
            "INSERT INTO cluster_workers(id, host, pid, port, recipe, version, started_at, heartbeat_at, health, reason, holds, lags) " +
            "VALUES ($id, $host, $pid, $port, $recipe, $version, $started, $beat, $health, $reason, $holds, $lags) " +
            "ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid, port = excluded.port, recipe = excluded.recipe, " +
            "version = excluded.version, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, health = excluded.health, " +
            "reason = excluded.reason, holds = excluded.holds, lags = excluded.lags",
            null, ("$id", Worker.Id), ("$host", Worker.Host), ("$pid", (long)Worker.Pid), ("$port", (long)Worker.Port), ("$recipe", Worker.Recipe),
            ("$version", Worker.Version), ("$started", _started.Iso()), ("$beat", now.Iso()), ("$health", health), ("$reason", reason),
            ("$holds", holds), ("$lags", JsonSerializer.Serialize(lags)));
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

internal static partial class ClusterLog
{
    [LoggerMessage(44000, LogLevel.Information, "Worker {Worker} of {Recipe} registered in the cluster's store {Store}")]
    public static partial void Registered(ILogger logger, string worker, string recipe, string store);

    [LoggerMessage(44001, LogLevel.Warning, "Worker {Worker}: a heartbeat was not written ({Reason}); the next one tries again")]
    public static partial void HeartbeatFailed(ILogger logger, string worker, string reason);
}
