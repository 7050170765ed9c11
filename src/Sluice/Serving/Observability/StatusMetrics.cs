using Prometheus;
using Sluice.Core.Status;

namespace Sluice.Serving.Observability;

/// <summary>
/// The status board's figures among the server's metrics (<see cref="ServerMetrics"/>): counters of records
/// and batches per pipeline and sink (rates are Prometheus' <c>rate()</c>), lag, backlog, replication slots, dead
/// letters by reason class, jobs. The values are copied from <see cref="StatusBoard"/> when scraped, so they are the
/// same numbers <c>sluice status</c> prints. Names and labels: docs/CONSOLE.md.
/// </summary>
public sealed class StatusMetrics
{
    private static readonly string[] States = ["starting", "running", "stopped", "failed"];
    private static readonly string[] WalStatuses = ["reserved", "extended", "unreserved", "lost"];

    private static readonly string[] SnapshotStates = ["queued", "running", "done", "failed"];
    private static readonly string[] BreakerStates = ["closed", "open", "half_open", "isolated"];

    private readonly StatusBoard _board;
    private readonly Lock _lock = new();
    private readonly Prometheus.Counter _recordsIn, _batchesIn, _recordsOut, _batchesOut, _retries, _jobRuns, _jobFailures;
    private readonly Prometheus.Gauge _state, _lastRead, _backlog, _lastCommit, _lagPosition, _lagSeconds, _slotLsn, _slotLagBytes, _slotLagSeconds, _slotSafe, _slotWal, _slotQuiet, _snapshotRows, _snapshotTotal, _snapshotChunks, _snapshotState, _breaker, _retryAttempt,
        _deadLetters, _jobLastRun, _jobDuration, _jobSucceeded, _jobNext, _jobRunning;

    /// <summary>Adds the board's series to the server's metrics, copied from the board before each scrape.</summary>
    public static void Register(ServerMetrics metrics, StatusBoard board)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        metrics.BeforeScrape(new StatusMetrics(metrics, board).Update);
    }

    private StatusMetrics(ServerMetrics f, StatusBoard board)
    {
        _board = board;
        string[] p = ["recipe", "pipeline"], s = ["recipe", "pipeline", "sink"], slot = ["recipe", "pipeline", "slot"], j = ["recipe", "job"];
        _recordsIn = f.Counter("sluice_pipeline_records_in_total", "Records the pipeline's source gave (after its steps); for a files source, the records of each file that reached an outcome.", p);
        _batchesIn = f.Counter("sluice_pipeline_batches_in_total", "Batches the source gave (a files source: files).", p);
        _state = f.Gauge("sluice_pipeline_state", "1 for the pipeline's current state (starting, running, stopped, failed).", [.. p, "state"]);
        _lastRead = f.Gauge("sluice_pipeline_last_read_timestamp_seconds", "When the source last gave a batch (Unix seconds).", p);
        _backlog = f.Gauge("sluice_pipeline_backlog", "What waits in front of the source: files in incoming/ and processing/ (unit files), landed bytes or WAL not yet committed by every sink (unit bytes).", [.. p, "unit"]);
        _recordsOut = f.Counter("sluice_sink_records_out_total", "Records the sink committed.", s);
        _batchesOut = f.Counter("sluice_sink_batches_out_total", "Writes the sink committed.", s);
        _lastCommit = f.Gauge("sluice_sink_last_commit_timestamp_seconds", "When the sink last committed (Unix seconds).", s);
        _lagPosition = f.Gauge("sluice_sink_lag_position", "Source positions read but not committed by the sink (landing-log bytes, WAL bytes).", s);
        _lagSeconds = f.Gauge("sluice_sink_lag_seconds", "Age of the oldest batch read that the sink has not committed (0 when none).", s);
        _breaker = f.Gauge("sluice_sink_breaker_state", "1 for the sink's circuit breaker state (closed, open, half_open, isolated); only sinks with a breaker (http).", [.. s, "state"]);
        _retries = f.Counter("sluice_sink_retries_total", "Failed writes the sink tried again (a server away, a timeout, HTTP 5xx/429).", s);
        _retryAttempt = f.Gauge("sluice_sink_retry_attempt", "While the sink retries a write: the failed attempts so far (0 when it is not retrying). The last error is in /api/status.", s);
        _slotLsn = f.Gauge("sluice_cdc_slot_confirmed_lsn", "The slot's confirmed_flush_lsn, as a number.", slot);
        _slotLagBytes = f.Gauge("sluice_cdc_slot_lag_bytes", "WAL between the server's current position and the slot's confirmed position.", slot);
        _slotLagSeconds = f.Gauge("sluice_cdc_slot_lag_seconds", "Age of the oldest change read but not committed by every sink (0 when none).", slot);
        _slotSafe = f.Gauge("sluice_cdc_slot_safe_wal_bytes", "WAL the slot may still fall behind before max_slot_wal_keep_size invalidates it (absent when unlimited).", slot);
        _slotWal = f.Gauge("sluice_cdc_slot_wal_status", "1 for the slot's current wal_status (reserved, extended, unreserved, lost).", [.. slot, "status"]);
        _slotQuiet = f.Gauge("sluice_cdc_seconds_since_message", "Seconds since the server last sent a change (or heartbeat) of this database, as of the last check.", slot);
        string[] snapshot = ["recipe", "pipeline", "table", "request"];
        _snapshotRows = f.Gauge("sluice_cdc_snapshot_rows_read", "Rows of a table snapshot (sluice cdc snapshot, a resumed initial snapshot) read by chunks every sink committed.", snapshot);
        _snapshotTotal = f.Gauge("sluice_cdc_snapshot_rows_total", "Rows the table snapshot will read, counted when it started.", snapshot);
        _snapshotChunks = f.Gauge("sluice_cdc_snapshot_chunks", "Chunks of the table snapshot every sink committed.", snapshot);
        _snapshotState = f.Gauge("sluice_cdc_snapshot_state", "1 for the table snapshot's current state (queued, running, done, failed).", [.. snapshot, "state"]);
        _deadLetters = f.Gauge("sluice_dead_letters_pending", "Pending dead letters by source and reason class (digits and quoted values removed; at most 20 classes per source, the rest as other).", ["recipe", "source", "reason"]);
        _jobRuns = f.Counter("sluice_job_runs_total", "Runs of the job in this process.", j);
        _jobFailures = f.Counter("sluice_job_failures_total", "Runs of the job in this process that failed.", j);
        _jobLastRun = f.Gauge("sluice_job_last_run_timestamp_seconds", "When the job's last run in this process started (Unix seconds).", j);
        _jobDuration = f.Gauge("sluice_job_last_duration_seconds", "How long the job's last run took.", j);
        _jobSucceeded = f.Gauge("sluice_job_last_succeeded", "1 when the job's last run succeeded, 0 when it failed.", j);
        _jobNext = f.Gauge("sluice_job_next_run_timestamp_seconds", "When the job's schedule fires next (Unix seconds).", j);
        _jobRunning = f.Gauge("sluice_job_running", "1 while the job runs.", j);
    }

    private void Update()
    {
        var now = _board.Snapshot();
        lock (_lock)
        {
            foreach (var p in now.Pipelines) { Update(p); }
            foreach (var job in now.Jobs) { Update(job); }
            Replace(_deadLetters, now.DeadLetters.Select(d => (new[] { d.Recipe, d.Source, d.Reason }, (double)d.Count)));
            UpdateSlots(now.Pipelines);
        }
    }

    /// <summary>
    /// The replication slots and their table snapshots the pipelines show now; the others' series go, so a worker of a
    /// cluster that let a slot go stops exporting it and its snapshots (the worker holding it now does), and a cluster's
    /// series are not doubled.
    /// </summary>
    private void UpdateSlots(IReadOnlyList<PipelineView> pipelines)
    {
        var slots = pipelines.Where(p => p.Slot is not null).Select(p => (Labels: new[] { p.Recipe, p.Pipeline, p.Slot!.Slot }, Slot: p.Slot!)).ToList();
        Replace(_slotLsn, slots.Select(x => (x.Labels, (double)x.Slot.ConfirmedLsn)));
        Replace(_slotLagBytes, slots.Select(x => (x.Labels, (double)x.Slot.LagBytes)));
        Replace(_slotLagSeconds, slots.Select(x => (x.Labels, x.Slot.LagSeconds)));
        Replace(_slotSafe, slots.Where(x => x.Slot.SafeWalBytes is not null).Select(x => (x.Labels, (double)x.Slot.SafeWalBytes!.Value)));
        Replace(_slotQuiet, slots.Select(x => (x.Labels, x.Slot.SecondsSinceMessage)));
        Replace(_slotWal, slots.SelectMany(x => WalStatuses.Select(w => ((string[])[.. x.Labels, w], x.Slot.WalStatus == w ? 1d : 0d))));

        var snapshots = pipelines.SelectMany(p => (p.Snapshots ?? []).Select(x =>
            (Labels: new[] { p.Recipe, p.Pipeline, x.Table, x.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, Snapshot: x))).ToList();
        Replace(_snapshotRows, snapshots.Select(x => (x.Labels, (double)x.Snapshot.RowsRead)));
        Replace(_snapshotTotal, snapshots.Where(x => x.Snapshot.Total is not null).Select(x => (x.Labels, (double)x.Snapshot.Total!.Value)));
        Replace(_snapshotChunks, snapshots.Select(x => (x.Labels, (double)x.Snapshot.Chunks)));
        Replace(_snapshotState, snapshots.SelectMany(x => SnapshotStates.Select(state => ((string[])[.. x.Labels, state], x.Snapshot.State == state ? 1d : 0d))));
    }

    private void Update(PipelineView p)
    {
        string[] labels = [p.Recipe, p.Pipeline];
        _recordsIn.WithLabels(labels).IncTo(p.RecordsIn);
        _batchesIn.WithLabels(labels).IncTo(p.BatchesIn);
        foreach (var state in States) { _state.WithLabels([.. labels, state]).Set(p.State == state ? 1 : 0); }
        if (p.LastReadAt is { } read) { _lastRead.WithLabels(labels).Set(Unix(read)); }
        if (p.Backlog is { } backlog) { _backlog.WithLabels([.. labels, backlog.Unit]).Set(backlog.Value); }
        foreach (var sink in p.Sinks)
        {
            string[] sl = [p.Recipe, p.Pipeline, sink.Sink];
            _recordsOut.WithLabels(sl).IncTo(sink.RecordsOut);
            _batchesOut.WithLabels(sl).IncTo(sink.BatchesOut);
            if (sink.LastCommitAt is { } at) { _lastCommit.WithLabels(sl).Set(Unix(at)); }
            if (sink.LagPositions is { } lag) { _lagPosition.WithLabels(sl).Set(lag); }
            _lagSeconds.WithLabels(sl).Set(sink.LagSeconds);
            _retries.WithLabels(sl).IncTo(sink.Retries);
            _retryAttempt.WithLabels(sl).Set(sink.Retry?.Attempt ?? 0);
            if (sink.Breaker is { } breaker)
            {
                foreach (var state in BreakerStates) { _breaker.WithLabels([.. sl, state]).Set(breaker == state ? 1 : 0); }
            }
        }
    }

    private void Update(JobView job)
    {
        string[] l = [job.Recipe, job.Job];
        _jobRuns.WithLabels(l).IncTo(job.Runs);
        _jobFailures.WithLabels(l).IncTo(job.Failures);
        _jobRunning.WithLabels(l).Set(job.Running ? 1 : 0);
        if (job.LastRunAt is { } last) { _jobLastRun.WithLabels(l).Set(Unix(last)); }
        if (job.LastDurationSeconds is { } duration) { _jobDuration.WithLabels(l).Set(duration); }
        if (job.LastOutcome is { } outcome) { _jobSucceeded.WithLabels(l).Set(outcome == "succeeded" ? 1 : 0); }
        if (job.NextRunAt is { } next) { _jobNext.WithLabels(l).Set(Unix(next)); }
    }

    /// <summary>Sets the series given and removes the others (a reason class whose letters were all replayed goes away).</summary>
    private static void Replace(Prometheus.Gauge gauge, IEnumerable<(string[] Labels, double Value)> series)
    {
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (labels, value) in series)
        {
            gauge.WithLabels(labels).Set(value);
            keep.Add(string.Join('\0', labels));
        }

        foreach (var labels in gauge.GetAllLabelValues().ToList())
        {
            if (!keep.Contains(string.Join('\0', labels))) { gauge.RemoveLabelled(labels); }
        }
    }

    private static double Unix(DateTime utc) => (utc - DateTime.UnixEpoch).TotalSeconds;
}
