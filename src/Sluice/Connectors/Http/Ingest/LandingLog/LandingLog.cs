using System.Buffers;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.IO;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// A stream's durable landing log: append-only segment files under <c>&lt;data&gt;/landing/&lt;stream&gt;/</c>, named
/// by the byte offset they start at. Appends go to an in-memory buffer of at most <c>queue_bytes</c>; one writer task
/// writes what has gathered and fsyncs it (group commit: every request waiting meanwhile is covered by the same fsync),
/// then releases the waiters. Readers only ever see fsynced bytes, so nothing a sink committed can vanish in a crash.
/// Segments wholly below the position every sink has committed are deleted. One process at a time owns a log (a lock file).
/// At open every record's checksum is read back and the clean-stop marker consulted (<see cref="LandingLogRecovery"/>): a
/// torn tail after an unclean stop is cut; any other damage leaves the log as found, readable up to the damage, refusing
/// appends (<see cref="Damage"/>).
/// </summary>
public sealed class LandingLog : IAsyncDisposable
{
    private const string Extension = ".seg";

    private readonly string _folder;
    private readonly long _segmentBytes;
    private readonly long _queueBytes;
    private readonly ILogger _log;
    private readonly ProcessLock _lock;
    private readonly Lock _gate = new();
    private readonly List<(long Offset, TaskCompletionSource Done)> _waiters = [];
    private readonly SemaphoreSlim _work = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<long> _segments = [];
    private readonly Task _writer;
    private ArrayBufferWriter<byte> _pending = new(1 << 16);
    private ArrayBufferWriter<byte> _writing = new(1 << 16);
    private long _writingBytes;
    private long _appendedEnd;
    private long _durableEnd;
    private long _acknowledged;
    private FileStream? _active;
    private long _activeBase;
    private TaskCompletionSource _durableChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Exception? _failed;
    private LandingLogDamage? _damage;
    private bool _markerRemoved;
    private long? _cleanEnd;
    private int _quietFlushes;

    /// <summary>Consecutive small flushes after which a buffer grown by a burst is given back.</summary>
    private const int QuietFlushesBeforeShrink = 256;

    private LandingLog(string folder, long segmentBytes, long queueBytes, ILogger log, ProcessLock held)
    {
        _folder = folder;
        _segmentBytes = segmentBytes;
        _queueBytes = queueBytes;
        _log = log;
        _lock = held;
        Recover();
        if (_damage is null)
        {
            _active = new FileStream(SegmentPath(_activeBase), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
        }

        // Its own thread: it spends much of its time blocked in fsync, and on a pool thread that would leave the pool a
        // worker short for parsing requests until the pool noticed and added one.
        _writer = Task.Factory.StartNew(WriteLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public string Folder => _folder;

    /// <summary>Offset after the last fsynced record: what readers may read and what acknowledgements cover.</summary>
    public long DurableEnd { get { lock (_gate) { return _durableEnd; } } }

    /// <summary>Offset after the last appended record, durable or not.</summary>
    public long AppendedEnd { get { lock (_gate) { return _appendedEnd; } } }

    /// <summary>True once a write or fsync failed: nothing more is accepted until a restart.</summary>
    public bool Failed { get { lock (_gate) { return _failed is not null; } } }

    /// <summary>The damage found at open or since (null: none): appends are refused and readers stop at its offset.</summary>
    public LandingLogDamage? Damage { get { lock (_gate) { return _damage; } } }

    /// <summary>Bytes appended but not yet fsynced (the in-memory queue).</summary>
    public long QueuedBytes { get { lock (_gate) { return _pending.WrittenCount + _writingBytes; } } }

    public long QueueCapacity => _queueBytes;

    /// <summary>Bytes landed but not yet committed by every sink.</summary>
    public long BacklogBytes { get { lock (_gate) { return _durableEnd - _acknowledged; } } }

    /// <summary>The start offsets of the segments on disk (oldest first).</summary>
    public IReadOnlyList<long> Segments { get { lock (_gate) { return _segments.ToList(); } } }

    /// <summary>Raised (on the acknowledging thread) before a segment is deleted, with its path, so its dedup keys can be kept.</summary>
    public Action<string>? SegmentRetiring { get; set; }

    public static LandingLog Open(string folder, long segmentBytes, long queueBytes, ILogger log)
    {
        Directory.CreateDirectory(folder);
        var held = ProcessLock.TryAcquire(Path.Combine(folder, "owner.lock"))
            ?? throw new SluiceException($"the landing log '{folder}' is in use by another Sluice process; stop it first (one process owns a stream's log).");
        try
        {
            return new LandingLog(folder, segmentBytes, queueBytes, log, held);
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    /// <summary>Whether <paramref name="bytes"/> more fit into the queue now (a hint: <see cref="Append"/> decides).</summary>
    public bool HasRoom(long bytes)
    {
        lock (_gate) { return _pending.WrittenCount + _writingBytes + bytes <= _queueBytes; }
    }

    /// <summary>
    /// Appends records written by <paramref name="write"/> into a span of <paramref name="bytes"/> bytes, under the log's
    /// lock (callers that must decide atomically with the append, like deduplication, do it inside). Returns the end
    /// offset to wait for, or -1 when the queue is full.
    /// </summary>
    public long Append(int bytes, SpanAction write)
    {
        ArgumentNullException.ThrowIfNull(write);
        lock (_gate)
        {
            if (_failed is not null)
            {
                throw new IOException($"the landing log '{_folder}' failed earlier and accepts nothing more until a restart", _failed);
            }

            if (_damage is not null)
            {
                throw new LandingLogDamagedException(_damage);
            }

            if (_pending.WrittenCount + _writingBytes + bytes > _queueBytes)
            {
                return -1;
            }

            var span = _pending.GetSpan(Math.Max(bytes, 1))[..bytes];
            var used = write(span);
            _pending.Advance(used);
            _appendedEnd += used;
            var end = _appendedEnd;
            if (used > 0 && _pending.WrittenCount == used)
            {
                _work.Release();
            }

            return end;
        }
    }

    public delegate int SpanAction(Span<byte> span);

    /// <summary>Completes once everything up to <paramref name="offset"/> is fsynced.</summary>
    public Task WaitDurableAsync(long offset)
    {
        lock (_gate)
        {
            if (_failed is not null) { return Task.FromException(new IOException($"the landing log '{_folder}' could not be written", _failed)); }
            if (_durableEnd >= offset) { return Task.CompletedTask; }
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((offset, done));
            return done.Task;
        }
    }

    /// <summary>Completes when <see cref="DurableEnd"/> moves past <paramref name="known"/>.</summary>
    public async Task WaitForDataAsync(long known, CancellationToken ct)
    {
        Task changed;
        lock (_gate)
        {
            if (_durableEnd > known) { return; }
            changed = _durableChanged.Task;
        }

        await changed.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Every sink has committed up to <paramref name="position"/>: whole segments below it are no longer needed.</summary>
    public void Acknowledge(long position)
    {
        List<long> retire;
        lock (_gate)
        {
            if (position <= _acknowledged) { return; }
            _acknowledged = Math.Min(position, _durableEnd);
            retire = [];
            for (var i = 0; i + 1 < _segments.Count && _segments[i + 1] <= _acknowledged; i++)
            {
                retire.Add(_segments[i]);
            }
        }

        foreach (var start in retire)
        {
            var path = SegmentPath(start);
            SegmentRetiring?.Invoke(path);
            File.Delete(path);
            lock (_gate) { _segments.Remove(start); }
        }
    }

    /// <summary>
    /// Damage found after open (a sink committed past the log's end, or a reader met a bad record): from now on appends are
    /// refused and readers stop at <paramref name="damage"/>'s offset. Reported once, at Error.
    /// </summary>
    public void ReportDamage(LandingLogDamage damage)
    {
        ArgumentNullException.ThrowIfNull(damage);
        lock (_gate)
        {
            if (_damage is not null) { return; }
            _damage = damage;
        }

        LandingLogLog.Damaged(_log, damage.Message);
    }

    /// <summary>
    /// <c>sluice landing repair</c>: makes a damaged log whole again (see <see cref="LandingLogRepair"/>) and closes it for
    /// this process (the next open checks it afresh). Only right after open, before anything was appended.
    /// </summary>
    /// <param name="committed">The positions the pipeline's sinks have committed.</param>
    public IReadOnlyList<DroppedBytes> Repair(IReadOnlyList<long> committed, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(committed);
        lock (_gate)
        {
            if (_appendedEnd != _durableEnd || _pending.WrittenCount > 0) { throw new InvalidOperationException("repair runs before anything is appended"); }
            _damage ??= new LandingLogDamage(_folder, SegmentName(_activeBase), _durableEnd, "closed for repair");
        }

        _active?.Dispose();
        _active = null;
        var dropped = LandingLogRepair.Run(_folder, Segments, SegmentPath, _cleanEnd is -1 ? null : _cleanEnd,
            committed.Count == 0 ? null : committed.Max(), committed.Count == 0 ? null : committed.Min(), time);
        // The marker vouched for an end the repair may have moved: the next start reads the log as after a crash.
        File.Delete(Path.Combine(_folder, CleanStopMarker.FileName));
        FileSync.Directory(_folder);
        _markerRemoved = false;
        return dropped;
    }

    /// <summary>Reports damage a reader met at <paramref name="offset"/> (see <see cref="ReportDamage"/>) and returns it.</summary>
    public LandingLogDamage DamageAt(long offset, string what)
    {
        string segment;
        lock (_gate)
        {
            var i = _segments.FindLastIndex(s => s <= offset);
            segment = SegmentName(i < 0 ? 0 : _segments[i]);
        }

        ReportDamage(new LandingLogDamage(_folder, segment, offset, what));
        return Damage!;
    }

    /// <summary>
    /// Where the record starting at <paramref name="offset"/> ends, read from the segment files without opening the log
    /// (another process may own it); null when no intact record starts there. An offset below the oldest segment was
    /// acknowledged by every sink, so the log resumes at that segment.
    /// </summary>
    public static long? RecordEnd(string folder, long offset)
    {
        if (!Directory.Exists(folder))
        {
            return null;
        }

        var starts = Directory.EnumerateFiles(folder, "*" + Extension)
            .Select(f => long.TryParse(Path.GetFileNameWithoutExtension(f), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1)
            .Where(s => s >= 0).Order().ToList();
        if (starts.Count == 0)
        {
            return null;
        }

        var segment = starts.LastOrDefault(s => s <= offset, -1);
        if (segment < 0)
        {
            return starts[0];
        }

        using var handle = File.OpenHandle(Path.Combine(folder, segment.ToString("D20", CultureInfo.InvariantCulture) + Extension), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var header = new byte[LandingRecord.HeaderSize];
        if (RandomAccess.Read(handle, header, offset - segment) < header.Length || LandingRecord.TryRead(header, out var size) == ReadStatus.Corrupt)
        {
            return null;
        }

        var record = new byte[size];
        return RandomAccess.Read(handle, record, offset - segment) == size && LandingRecord.TryRead(record, out _) == ReadStatus.Ok ? offset + size : null;
    }

    /// <summary>Copies the durable bytes starting at <paramref name="offset"/> into <paramref name="buffer"/>; returns how many (0 at the end).</summary>
    public int ReadAt(long offset, Span<byte> buffer)
    {
        long segment, next, durable;
        lock (_gate)
        {
            durable = _damage is null ? _durableEnd : Math.Min(_durableEnd, _damage.Offset);
            var i = _segments.FindLastIndex(s => s <= offset);
            if (i < 0)
            {
                throw new InvalidOperationException($"offset {offset} of '{_folder}' was already deleted (oldest segment starts at {(_segments.Count > 0 ? _segments[0] : 0)})");
            }

            segment = _segments[i];
            next = i + 1 < _segments.Count ? _segments[i + 1] : long.MaxValue;
        }

        var available = Math.Min(Math.Min(durable, next) - offset, buffer.Length);
        if (available <= 0)
        {
            return 0;
        }

        using var handle = File.OpenHandle(SegmentPath(segment), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var total = 0;
        while (total < available)
        {
            var n = RandomAccess.Read(handle, buffer.Slice(total, (int)(available - total)), offset - segment + total);
            if (n == 0) { break; }
            total += n;
        }

        return total;
    }

    private void WriteLoop()
    {
        while (true)
        {
            try
            {
                _work.Wait(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Stopping: what was appended is still written below, so every waiting request gets its answer.
            }

            long end;
            lock (_gate)
            {
                (_pending, _writing) = (_writing, _pending);
                _writingBytes = _writing.WrittenCount;
                end = _appendedEnd;
            }

            if (_writing.WrittenCount > 0)
            {
                try
                {
                    WriteAndSync(_writing.WrittenSpan, end);
                    Core.CrashPoint.Reach("landing.fsynced");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Fail(e);
                    return;
                }
            }

            _writing.ResetWrittenCount();
            _quietFlushes = _writing.Capacity > 4 * (1 << 20) && _writingBytes < (1 << 20) ? _quietFlushes + 1 : 0;
            if (_quietFlushes >= QuietFlushesBeforeShrink)
            {
                // A burst grew the buffer; give the memory back once traffic has been normal for a while (not after
                // one small flush between big ones: regrowing it allocates the large buffers all over again).
                _writing = new ArrayBufferWriter<byte>(1 << 16);
                _quietFlushes = 0;
            }

            List<TaskCompletionSource> done = [];
            TaskCompletionSource changed;
            lock (_gate)
            {
                _writingBytes = 0;
                _durableEnd = end;
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Offset <= end)
                    {
                        done.Add(_waiters[i].Done);
                        _waiters.RemoveAt(i);
                    }
                }

                changed = _durableChanged;
                _durableChanged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            foreach (var d in done) { d.TrySetResult(); }
            changed.TrySetResult();
            if (_stop.IsCancellationRequested && QueuedBytes == 0)
            {
                return;
            }
        }
    }

    private void WriteAndSync(ReadOnlySpan<byte> bytes, long end)
    {
        var start = end - bytes.Length;
        if (start - _activeBase >= _segmentBytes)
        {
            // Roll at a flush boundary, which is always a record boundary; the old segment was fsynced by its last flush.
            _active!.Dispose();
            _activeBase = start;
            _active = new FileStream(SegmentPath(start), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.None);
            FileSync.Directory(_folder);
            lock (_gate) { _segments.Add(start); }
        }

        RandomAccess.Write(_active!.SafeFileHandle, bytes, start - _activeBase);
        Core.CrashPoint.Reach("landing.written");
        _active.Flush(flushToDisk: true);
    }

    private void Fail(Exception e)
    {
        List<TaskCompletionSource> waiting;
        long durable;
        lock (_gate)
        {
            _failed = e;
            durable = _durableEnd;
            waiting = _waiters.Select(w => w.Done).ToList();
            _waiters.Clear();
        }

        if (Core.IO.DiskFull.Is(e))
        {
            // The part of the failed flush that reached the disk was refused to its senders (507): cut it off, so that a
            // restart does not land events whose requests were answered "not accepted".
            try
            {
                if (durable >= _activeBase && _active is { } active) { active.SetLength(durable - _activeBase); active.Flush(flushToDisk: true); }
            }
            catch (Exception cut) when (cut is IOException or ObjectDisposedException)
            {
                // Recovery at the next start cuts a torn tail anyway; whole records left here are events the client may resend (deduplicated).
            }

            LandingLogLog.DiskFull(_log, _folder, Core.IO.DiskFull.Describe(e));
        }
        else { LandingLogLog.WriteFailed(_log, e, _folder); }
        foreach (var w in waiting) { w.TrySetException(new IOException($"the landing log '{_folder}' could not be written", e)); }
    }

    /// <summary>
    /// Finds the segments, reads every record back and decides what the log can prove (<see cref="LandingLogRecovery.Decide"/>):
    /// a torn tail after an unclean stop is cut; damage is reported and nothing is changed.
    /// </summary>
    private void Recover()
    {
        foreach (var file in Directory.EnumerateFiles(_folder, "*" + Extension))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out var start))
            {
                _segments.Add(start);
            }
        }

        _segments.Sort();
        var clean = CleanStopMarker.Read(_folder);
        _cleanEnd = clean;
        if (_segments.Count == 0 && clean is null)
        {
            _segments.Add(0);
            using (File.Create(SegmentPath(0))) { }
            FileSync.Directory(_folder);
        }

        var scans = _segments.Select(s => SegmentScanner.Scan(SegmentPath(s), s)).ToList();
        var recovery = clean == -1
            ? new LandingLogRecovery(0, null, new LandingLogDamage(_folder, CleanStopMarker.FileName, 0, "the clean-stop marker cannot be read"))
            : scans.Count == 0
                ? new LandingLogRecovery(0, null, new LandingLogDamage(_folder, SegmentName(0), 0, $"the log was stopped cleanly at offset {clean} but no segment is left"))
                : LandingLogRecovery.Decide(_folder, scans, clean);
        if (_segments.Count == 0)
        {
            _segments.Add(0);
        }

        _activeBase = _segments[^1];
        _appendedEnd = _durableEnd = recovery.End;
        _acknowledged = _segments[0];
        if (recovery.Damage is { } damage)
        {
            _damage = damage;
            LandingLogLog.Damaged(_log, damage.Message);
            return;
        }

        if (recovery.Cut is { } cut)
        {
            using var stream = new FileStream(SegmentPath(_activeBase), FileMode.Open, FileAccess.ReadWrite);
            stream.SetLength(cut.Offset - _activeBase);
            stream.Flush(flushToDisk: true);
            LandingLogLog.TornTail(_log, _folder, cut.Segment, cut.Offset, cut.Bytes);
        }

        CleanStopMarker.Remove(_folder);
        _markerRemoved = true;
    }

    private static string SegmentName(long start) => start.ToString("D20", CultureInfo.InvariantCulture) + Extension;

    private string SegmentPath(long start) => Path.Combine(_folder, SegmentName(start));

    /// <summary>
    /// How long closing waits for the writer's last write and fsync (a dead disk can block fsync for good); past it the
    /// log is left without its clean-stop marker, so the next start checks it as after a crash.
    /// </summary>
    public static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(10);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _work.Release();
        var written = true;
        try
        {
            await _writer.WaitAsync(CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            written = false;
            LandingLogLog.CloseTimedOut(_log, _folder, CloseTimeout.TotalSeconds);
        }

        if (_active is not null) { await _active.DisposeAsync().ConfigureAwait(false); }
        if (written && _markerRemoved && !Failed)
        {
            // Everything appended is written and fsynced (the writer drains before it ends): the next start may hold the
            // log to exactly this end.
            CleanStopMarker.Write(_folder, DurableEnd);
        }

        if (written)
        {
            _stop.Dispose();
            _work.Dispose();
        }

        _lock.Dispose();
    }
}

/// <summary>An append refused because the log is damaged; the message says where and what to do.</summary>
public sealed class LandingLogDamagedException(LandingLogDamage damage) : IOException(damage.Message)
{
    public LandingLogDamage Damage { get; } = damage;
}

internal static partial class LandingLogLog
{
    [LoggerMessage(5101, LogLevel.Critical, "Landing log {Folder}: write or fsync failed; ingest of this stream answers 503 until a restart")]
    public static partial void WriteFailed(ILogger logger, Exception error, string folder);

    [LoggerMessage(9200, LogLevel.Warning, "Landing log {Folder}: after an unclean stop, cut a torn tail of {Bytes} bytes at offset {Offset} of segment {Segment} (written, never fsynced, so never acknowledged)")]
    public static partial void TornTail(ILogger logger, string folder, string segment, long offset, long bytes);

    [LoggerMessage(9201, LogLevel.Error, "{Message}")]
    public static partial void Damaged(ILogger logger, string message);

    [LoggerMessage(9202, LogLevel.Error, "Landing log {Folder}: the writer did not finish its last fsync within {Seconds} s at close; the log is left as after a crash")]
    public static partial void CloseTimedOut(ILogger logger, string folder, double seconds);

    [LoggerMessage(9604, LogLevel.Critical, "Landing log {Folder}: no space left on device ({Detail}); ingest of this stream answers 507 until space is freed and the server restarted (nothing acknowledged is lost)")]
    public static partial void DiskFull(ILogger logger, string folder, string detail);
}
