using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;
using Sluice.Jobs;

using Sluice.Core;

namespace Sluice.Hosting;

/// <summary>
/// What an operator can ask of a running recipe host (the console's <c>/api/</c> routes, and <c>sluice dlq replay</c>
/// through its request files): replay its dead letters with its own components, run a job now, backfill a range of days.
/// Everything runs in this process, on the host's stop token, and is recorded as the scheduler's runs are.
/// </summary>
public sealed class RecipeOperations : IDisposable
{
    /// <summary>Backfills kept for their progress to be read; the oldest finished ones go first.</summary>
    public const int KeptBackfills = 100;

    /// <summary>Longest range one backfill takes (100 years of days): a typo in a year is refused, not run for hours.</summary>
    public const int MaxBackfillDays = 36_600;

    private readonly RecipeHost _host;
    private readonly IEngineServices _services;
    private readonly SemaphoreSlim _replaying = new(1, 1);
    private readonly ConcurrentDictionary<string, Task> _active = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Backfill> _backfills = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly JobRunner _runNow;
    private readonly ILogger _log;
    private IReadOnlyList<IDeadLetterReplayer>? _replayers;
    private CancellationToken _stopping = new(canceled: true);

    internal RecipeOperations(RecipeHost host, Recipe recipe, IEngineServices services)
    {
        _host = host;
        Recipe = recipe;
        _services = services;
        // A job another process runs (sluice job run) is reported as busy at once, not waited for behind the request.
        _runNow = new JobRunner(services) { LockWait = TimeSpan.Zero };
        _log = services.Logging.CreateLogger("Sluice.Operations");
    }

    public Recipe Recipe { get; }

    /// <summary>When the scheduler of this run fires the job next; null when it has no schedule or schedules are off.</summary>
    public DateTimeOffset? NextRunAt(JobDefinition job) => _host.NextRunAt(job);

    /// <summary>A run of the job is in progress: started here, or recorded as running by a live process (the scheduler, <c>sluice job run</c>).</summary>
    public bool IsRunning(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return _active.ContainsKey(job.FullName) || _runNow.Runs.Runs(job.FullName, 1) is [{ Status: JobRunStore.Running }];
    }

    /// <summary>Replays letters of this recipe with its running components, one replay at a time (the request files' loop shares it).</summary>
    public async Task<IReadOnlyList<(long Id, string? Error)>> ReplayAsync(IReadOnlyList<DeadLetter> letters, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(letters);
        var results = new List<(long, string?)>();
        await _replaying.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _replayers ??= _host.CreateReplayers();
            foreach (var letter in letters)
            {
                string? error;
                try
                {
                    // Read again under the lock: replayed or discarded meanwhile means not a second time.
                    var now = _services.DeadLetters.Get(letter.Id);
                    error = now is null ? $"no dead letter with id {letter.Id}"
                        : now.Status != DeadLetterStore.Pending ? $"letter {letter.Id} is {now.Status}, not pending: not replayed"
                        : await DeadLetterReplays.ReplayOneAsync(_services.DeadLetters, _replayers, now, Recipe.Name, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SluiceException or IOException or InvalidOperationException or System.Text.Json.JsonException)
                {
                    error = e.Message;
                }

                results.Add((letter.Id, error));
            }
        }
        finally
        {
            _replaying.Release();
        }

        return results;
    }

    /// <summary>
    /// Starts one run of the job now (trigger <c>manual</c>, as of now) and returns its id in <c>job_runs</c> once it is
    /// recorded; the run goes on in this process. <see cref="JobBusyException"/> when a run of it is already in progress.
    /// </summary>
    public async Task<long> RunNowAsync(JobDefinition job)
    {
        ArgumentNullException.ThrowIfNull(job);
        var started = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Start(job, async ct =>
        {
            try
            {
                await _host.RunJobAsync(job, new JobRequest(_services.Time.GetUtcNow(), Trigger: "manual"), _runNow, ct, id => started.TrySetResult(id)).ConfigureAwait(false);
            }
            catch (TimeoutException e)
            {
                started.TrySetException(new JobBusyException($"{job.FullName} is already running in another process ({e.Message})"));
            }
            catch (Exception e)
            {
                // Recorded in job_runs and the status board by the runner; a failure before the record is the caller's answer.
                started.TrySetException(e);
            }
        });
        return await started.Task.ConfigureAwait(false);
    }

    /// <summary>Starts a backfill of the job over <paramref name="from"/>..<paramref name="to"/> (days, inclusive).</summary>
    public Backfill StartBackfill(JobDefinition job, DateOnly from, DateOnly to)
    {
        ArgumentNullException.ThrowIfNull(job);
        var backfill = new Backfill(Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)), Recipe.Name, job.Name, from, to);
        Start(job, ct => backfill.RunAsync(
            (day, dayCt) =>
            {
                var start = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
                // As of the day itself, so its run in job_runs is dated by the day it recomputes (the range decides what runs).
                var request = new JobRequest(start, day, day, Trigger: "backfill") { FromTime = start, ToTime = start.AddDays(1) };
                return _host.RunJobAsync(job, request, null, dayCt);
            }, ct).ContinueWith(_ => OperationsLog.BackfillEnded(_log, job.FullName, backfill.View().State, backfill.View().Message), TaskScheduler.Default));
        Keep(backfill);
        return backfill;
    }

    public Backfill? FindBackfill(string id) => _backfills.GetValueOrDefault(id);

    /// <summary>Called by the host as it runs: work started from now on is cancelled by its stop.</summary>
    internal void Attach(CancellationToken stopping) => _stopping = stopping;

    /// <summary>Waits for the runs and backfills started here to end (they observe the host's stop), at most <paramref name="timeout"/>.</summary>
    internal async Task DrainAsync(TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(_active.Values).WaitAsync(timeout, _services.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The host reports its own bounded stop; a job that ignores its cancellation must not hold the exit.
        }
    }

    private void Start(JobDefinition job, Func<CancellationToken, Task> work)
    {
        if (_stopping.IsCancellationRequested) { throw new JobBusyException($"{Recipe.Name} is not running (stopping or not started): nothing can start now"); }
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = RunGuardedAsync(job.FullName, gate.Task, work);
        // The lock too: a run that holds it but is not recorded yet (the scheduler's, another process's) must not be
        // answered 202 and then fail on the lock, which the status board would show as a failed run.
        if (!_active.TryAdd(job.FullName, task) || IsRecordedRunning(job) || _runNow.IsHeld(job))
        {
            _active.TryRemove(new KeyValuePair<string, Task>(job.FullName, task));
            gate.SetCanceled();
            throw new JobBusyException($"{job.FullName} is already running (see GET /api/jobs/{job.Recipe}/{job.Name}/runs)");
        }

        _ = task.ContinueWith(_ => _active.TryRemove(new KeyValuePair<string, Task>(job.FullName, task)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        gate.SetResult();
    }

    private bool IsRecordedRunning(JobDefinition job) => _runNow.Runs.Runs(job.FullName, 1) is [{ Status: JobRunStore.Running }];

    private async Task RunGuardedAsync(string job, Task gate, Func<CancellationToken, Task> work)
    {
        try
        {
            await gate.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            await work(_stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping: the runner recorded the run as interrupted.
        }
        catch (Exception e)
        {
            // Also in job_runs and the status board (the runner recorded it); the log says it where the scheduler's failures go.
            OperationsLog.RunFailed(_log, job, e.Message);
        }
    }

    public void Dispose() => _replaying.Dispose();

    private void Keep(Backfill backfill)
    {
        lock (_order)
        {
            _backfills[backfill.Id] = backfill;
            _order.Add(backfill.Id);
            while (_order.Count > KeptBackfills && _order.FirstOrDefault(id => _backfills[id].Finished) is { } old)
            {
                _order.Remove(old);
                _backfills.TryRemove(old, out _);
            }
        }
    }
}

/// <summary>The job is already running (or the recipe is not): the console answers 409.</summary>
public sealed class JobBusyException(string message) : SluiceException(message);

internal static partial class OperationsLog
{
    [LoggerMessage(11301, LogLevel.Warning, "{Job}: run started from the console failed: {Reason}")]
    public static partial void RunFailed(ILogger logger, string job, string reason);

    [LoggerMessage(11302, LogLevel.Information, "{Job}: backfill {State}: {Message}")]
    public static partial void BackfillEnded(ILogger logger, string job, string state, string message);
}
