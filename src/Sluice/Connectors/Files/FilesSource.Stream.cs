using System.Runtime.CompilerServices;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>
/// A files pipeline with sinks: each file is one unit of the stream, one batch holding all its valid rows, at a position
/// of its own (1, 2, 3, ... in the order files are handed on, kept in <see cref="FileUnits"/> across restarts). A sink
/// that commits into the metadata store (the lake) records the file's ledger entry and dead letters in the transaction
/// of its rows (<see cref="RecordBatch.Commits"/>); once every sink has committed the file, the source records them too
/// (for the other sinks; at most once) and only then moves the file to processed/. A file still in processing/ at start
/// is handed on again at its old position, so a sink that had committed it skips it and the others get it.
/// On a cluster's shared drop folder every worker runs the pipeline: each takes files by claim (<see cref="FileClaims"/>),
/// numbers them in positions of its own (its sinks' checkpoints are scoped to the worker, <see cref="CheckpointScope"/>),
/// and takes over the files of a worker whose claims ran out, handing them on again (<see cref="TakeOverAsync"/>).
/// </summary>
public sealed partial class FilesSource : IStreamSource, ICheckpointScope, ILogSequencedSource
{
    private readonly SemaphoreSlim _finishing = new(1, 1);
    private readonly Dictionary<long, ParsedFile> _handedOn = [];
    private readonly CancellationTokenSource _leases = new();
    private Task? _keepAlive;
    private long _lastSeq;
    private volatile bool _caughtUp;
    private bool _sequenced;

    public bool CaughtUp => _caughtUp;

    /// <summary>On a shared drop folder the worker's own (its positions are its own); null in a single process.</summary>
    public string? CheckpointScope { get; }

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        var units = _units ?? throw new InvalidOperationException("the files source was built without a pipeline: it lands its files itself");
        var committed = resumeAfter ?? 0;
        _lastSeq = Math.Max(units.Last(), committed);
        if (FailedFileLetter.RecoverMissing(_services.DeadLetters, Drop, _recipe) is var lettered and > 0)
        {
            FilesLog.LetteredAgain(_log, lettered);
        }

        if (_claims is not null)
        {
            // A shared drop folder: the claims of the files in hand are renewed until the source is disposed (after the
            // pipeline's drain), and files left in processing/ are taken by claim in the loop below, not at start.
            _keepAlive ??= _claims.KeepAliveAsync(_leases.Token);
            foreach (var unit in units.Open().Where(u => !File.Exists(Path.Combine(Drop.Processing, u.FileName))))
            {
                units.Done(unit.Seq); // moved on before it was marked
            }
        }
        else
        {
            await foreach (var batch in ReopenAsync(units, committed, ct).ConfigureAwait(false))
            {
                yield return batch;
            }
        }

        var started = _services.Time.GetUtcNow();
        while (!ct.IsCancellationRequested)
        {
            var stable = _tracker.Observe(Drop.ListIncoming(), _services.Time.GetUtcNow(), out var waiting);
            if (stable.Count > 0)
            {
                var paths = new List<string>();
                foreach (var name in stable)
                {
                    _tracker.Forget(name);
                    if (TryClaim(name, out var path)) { paths.Add(path); }
                }

                await foreach (var batch in HandOnAsync(paths, ct).ConfigureAwait(false))
                {
                    yield return batch;
                }

                continue;
            }

            if (_claims is not null)
            {
                var before = _lastSeq;
                await foreach (var batch in TakeOverAsync(ct).ConfigureAwait(false))
                {
                    yield return batch;
                }

                if (_lastSeq != before) { continue; }
            }

            if (!_caughtUp && (waiting == 0 || _services.Time.GetUtcNow() - started > _options.OnceWait))
            {
                // Everything there at the start is handed on (what `run --once` waits for): an empty batch says so.
                _caughtUp = true;
                yield return new RecordBatch([], _lastSeq);
                continue;
            }

            await Task.Delay(_caughtUp ? _options.PollInterval : TimeSpan.FromMilliseconds(Math.Max(50, _options.StableAfter.TotalMilliseconds / 2)), _services.Time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A single process's start: its files handed on before a stop go again at their own positions (a sink past one
    /// skips it), or are finished when every sink has them; files claimed but never handed on become new units.
    /// </summary>
    private async IAsyncEnumerable<RecordBatch> ReopenAsync(FileUnits units, long committed, [EnumeratorCancellation] CancellationToken ct)
    {
        var types = _catalog.All(_recipe);
        var reopened = new HashSet<string>(StringComparer.Ordinal);
        foreach (var unit in units.Open())
        {
            var path = Path.Combine(Drop.Processing, unit.FileName);
            reopened.Add(unit.FileName);
            if (!File.Exists(path))
            {
                units.Done(unit.Seq); // moved on before it was marked
                continue;
            }

            FilesLog.Resumed(_log, unit.FileName);
            var file = await ParseUnitAsync(path, types, ct).ConfigureAwait(false);
            if (file is null)
            {
                units.Done(unit.Seq); // it fails now (its type changed): in failed/ with its reason
                continue;
            }

            lock (_handedOn) { _handedOn[unit.Seq] = file; }
            if (unit.Seq <= committed)
            {
                await AcknowledgeAsync(unit.Seq, ct).ConfigureAwait(false);
                continue;
            }

            yield return Unit(unit.Seq, file);
        }

        var claimed = Directory.EnumerateFiles(Drop.Processing).Where(p => !reopened.Contains(Path.GetFileName(p))).ToList();
        await foreach (var batch in HandOnAsync(claimed, ct).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    /// <summary>
    /// On a shared drop folder: the files in processing/ whose claim this worker gets (their worker died or stopped
    /// renewing), handed on again at positions of this worker's; the dead worker's units of them are closed. Keyed,
    /// idempotent sinks make the rows it had written already come out the same. A file whose content the ledger has
    /// (its worker died between the ledger entry and the move) only moves on.
    /// </summary>
    private async IAsyncEnumerable<RecordBatch> TakeOverAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var taken = Directory.EnumerateFiles(Drop.Processing).Order(StringComparer.Ordinal)
            .Where(p => Path.GetFileName(p) is var name && !_claims!.Holds(name) && _claims.TryClaim(name)).ToList();
        var redo = new List<string>();
        var types = taken.Count == 0 ? [] : _catalog.All(_recipe);
        foreach (var path in taken)
        {
            var name = Path.GetFileName(path);
            _units!.TakeOver(name);
            string content;
            try
            {
                content = await HashingReadStream.HashFileAsync(path, ct).ConfigureAwait(false);
            }
            catch (FileNotFoundException)
            {
                _claims!.Release(name); // its worker moved it out between our look and our claim
                continue;
            }

            if (_ingestor.AlreadyIngested(FileIngestor.LedgerKey(content, FileTypeCatalog.Match(types, name), name)))
            {
                MoveToProcessedOnce(path);
                FilesLog.Recovered(_log, name);
                _claims!.Release(name);
                continue;
            }

            FilesLog.Resumed(_log, name);
            redo.Add(path);
        }

        await foreach (var batch in HandOnAsync(redo, ct).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    /// <summary>
    /// Moves a finished file to processed/; on a shared drop folder a worker whose claim was taken over (it hung past its
    /// lease) may find that the worker that took it moved it already: then there is nothing left to move.
    /// </summary>
    private string MoveToProcessedOnce(string path)
    {
        try
        {
            return Drop.MoveToProcessed(path);
        }
        catch (FileNotFoundException) when (_claims is not null)
        {
            return Path.Combine(Drop.Processed, Path.GetFileName(path));
        }
    }

    /// <summary>Claimed files in load order: each valid one a unit; a duplicate straight to processed/, a failing one to failed/.</summary>
    private async IAsyncEnumerable<RecordBatch> HandOnAsync(List<string> paths, [EnumeratorCancellation] CancellationToken ct)
    {
        var types = _catalog.All(_recipe);
        foreach (var path in LoadOrder(paths, types))
        {
            ParsedFile? file;
            try
            {
                file = await ParseUnitAsync(path, types, ct).ConfigureAwait(false);
            }
            catch (FileNotFoundException) when (_claims is not null)
            {
                // Taken over from a worker that hung past its lease and, waking, finished and moved it meanwhile.
                _claims.Release(Path.GetFileName(path));
                continue;
            }

            if (file is null)
            {
                continue;
            }

            var name = Path.GetFileName(path);
            if (_ingestor.AlreadyIngested(file.Hash!) || _units!.InFlight(file.Hash!).Any(n => n != name && File.Exists(Path.Combine(Drop.Processing, n))))
            {
                FilesLog.Duplicate(_log, name);
                var final = MoveToProcessedOnce(path);
                Report(new FileOutcome(name, file.Type.Name, FileStatus.Duplicate, 0, 0, 0, "same content as a file ingested before", final), new IngestCounter());
                continue;
            }

            var seq = ++_lastSeq;
            _units!.Add(new FileUnit(seq, name, file.Hash!));
            lock (_handedOn) { _handedOn[seq] = file; }
            yield return Unit(seq, file);
        }
    }

    /// <summary>A file read whole and validated; null when it failed (moved to failed/ with its reason and letter).</summary>
    private async Task<ParsedFile?> ParseUnitAsync(string path, IReadOnlyList<FileType> types, CancellationToken ct)
    {
        var name = Path.GetFileName(path);
        var type = FileTypeCatalog.Match(types, name);
        if (type is null)
        {
            Report(await FailAsync(path, null, new IngestRunFailure(NoTypeReason(types, name)), ct).ConfigureAwait(false), new IngestCounter());
            return null;
        }

        if (new FileInfo(path).Length > _options.UnitMaxBytes)
        {
            var reason = $"the file is larger than unit_max_mb ({_options.UnitMaxBytes >> 20} MiB): with sinks a file is one unit, held in memory until every sink has it; raise unit_max_mb or split the file";
            Report(await FailAsync(path, type, new IngestRunFailure(reason), ct).ConfigureAwait(false), new IngestCounter());
            return null;
        }

        var file = await _ingestor.ParseAsync(path, type, ct).ConfigureAwait(false);
        if (file.Run.Rejected)
        {
            Report(await FailAsync(path, type, new IngestRunFailure(file.Run), ct).ConfigureAwait(false), new IngestCounter());
            return null;
        }

        return file.Hash is null ? file with { Hash = FileIngestor.LedgerKey(await HashingReadStream.HashFileAsync(path, ct).ConfigureAwait(false), type, name) } : file;
    }

    /// <summary>
    /// A file's rows as one batch: its table named without the file type's zone (each sink places it), and its
    /// bookkeeping. On a shared drop folder with a sink that appends (<see cref="CarrySequences"/>) each row carries its
    /// number in the file as <c>_offset</c> and the batch the file's log (<see cref="FileLog"/>), so that sink skips the
    /// rows of a file a dead worker committed; the ledger entry is then recorded only once every sink has the file
    /// (<see cref="AcknowledgeAsync"/>), since a worker that takes a file over hands on again only a file not in the ledger.
    /// </summary>
    private RecordBatch Unit(long seq, ParsedFile file)
    {
        var table = BatchTableName(file.Type);
        var rows = ColumnBatchConcat.Runs(file.Batches.Where(b => b.Count > 0))
            .Select(b => new ColumnBatch(new TableSchema(table, b.Schema.Fields), [.. b.Columns], b.Count))
            .ToList();
        if (!_sequenced) { return new RecordBatch(rows, seq) { Commits = [new FileLedgerCommit(_ingestor, file)] }; }
        var numbered = new List<ColumnBatch>(rows.Count);
        long next = 0;
        foreach (var b in rows)
        {
            var offsets = new long?[b.Count];
            for (var i = 0; i < b.Count; i++) { offsets[i] = ++next; }
            numbered.Add(new ColumnBatch(new TableSchema(table, [.. b.Schema.Fields, new FieldSpec(Http.Ingest.StreamShape.OffsetColumn, FieldType.Integer, false)]), [.. b.Columns, offsets], b.Count));
        }

        return new RecordBatch(numbered, seq) { Log = next == 0 ? null : new LogSequences(FileLog(file), [new SequenceRange(1, next)]) };
    }

    /// <summary>The log of a file's rows for a sink that skips replays: its ledger key, the same for the file on every worker.</summary>
    private static string FileLog(ParsedFile file) => "file:" + file.Hash;

    /// <summary>
    /// A sink of the pipeline skips replays by log sequences (the lake sink): on a shared drop folder, where a file a dead
    /// worker handed on is handed on again by another, each file's rows get their numbers (<see cref="Unit"/>). In a
    /// single process a file comes again at its own position, which the sinks' checkpoints skip.
    /// </summary>
    public void CarrySequences() => _sequenced = _claims is not null;

    /// <summary>A file type's batch table: its table without the zone (each sink places it: the lake in its zone, Postgres in its schema).</summary>
    public static string BatchTableName(FileType type) => type.Table[(type.Table.IndexOf('.', StringComparison.Ordinal) + 1)..];

    /// <summary>Every sink has committed the files up to <paramref name="position"/>: their ledger entries, then processed/.</summary>
    public async Task AcknowledgeAsync(long position, CancellationToken ct)
    {
        await _finishing.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            List<(long Seq, ParsedFile File)> done;
            lock (_handedOn) { done = _handedOn.Where(u => u.Key <= position).OrderBy(u => u.Key).Select(u => (u.Key, u.Value)).ToList(); }
            foreach (var (seq, file) in done)
            {
                // Under the store's write lock: on a shared store a worker whose claim was taken over may record it at once.
                using (var c = _services.Metadata.Connect())
                using (var tx = c.BeginWrite())
                {
                    _ingestor.RecordCommitOnce(c, tx, file.Run, file.Hash!);
                    tx.Commit();
                }

                CrashPoint.Reach("files.committed");
                var final = MoveToProcessedOnce(file.Path);
                _units!.Done(seq);
                lock (_handedOn) { _handedOn.Remove(seq); }
                var name = Path.GetFileName(file.Path);
                FilesLog.Landed(_log, name, file.Run.Rows, file.Type.Table, file.Partitions, file.Run.BadRows);
                Report(new FileOutcome(name, file.Type.Name, FileStatus.Landed, file.Run.Rows, file.Run.BadRows, file.Partitions, null, final), new IngestCounter());
            }
        }
        finally
        {
            _finishing.Release();
        }
    }

    /// <summary>A file's ledger entry and dead letters, for a sink committing into the metadata store.</summary>
    private sealed class FileLedgerCommit(FileIngestor ingestor, ParsedFile file) : IMetadataCommit
    {
        public void Record(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx) => ingestor.RecordCommitOnce(connection, tx, file.Run, file.Hash!);
    }
}
