using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Core.Status;
using Sluice.Lake;

namespace Sluice.Connectors.Files;

/// <summary>
/// Ingests one claimed file: reads and validates it (one task) while its batches are written as staged Parquet (another
/// task, behind a channel of <see cref="ChannelCapacity"/> batches), then commits the staged files, the content hash
/// and any quarantined records in one metadata transaction. Nothing is visible before that commit, so a crash at any
/// point leaves either all of the file or none of it.
/// </summary>
internal sealed class FileIngestor(IEngineServices services, string recipe, FilesOptions options, SemaphoreSlim commitGate)
{
    /// <summary>Batches between the reader and the writer of one file; with <see cref="FilesOptions.BatchRows"/> this bounds a file's memory.</summary>
    public const int ChannelCapacity = 2;

    /// <summary>Where the rows read are shown to <c>sluice tap</c> (the pipeline's), or null; costs nothing while nobody listens.</summary>
    public TapHub? Tap { get; set; }

    /// <summary>The pipeline's name, for the trace spans (<see cref="PipelineTracing.File"/>).</summary>
    public string Pipeline { get; set; } = "files";

    public async Task<IngestResult> IngestAsync(string path, FileType type, CancellationToken ct)
    {
        var name = Path.GetFileName(path);
        using var span = PipelineTracing.File(recipe, Pipeline, name, type.Name);
        var run = new IngestRun(type, name, options.BatchRows, services.Time.GetUtcNow().UtcDateTime);
        if (new FileInfo(path).Length == 0)
        {
            run.Fail(0, 0, "the file is empty (0 bytes)");
            PipelineTracing.FileRead(span, 0, 0, run.Reason());
            return new IngestResult(run, null, 0);
        }

        var nameDate = default(DateOnly);
        if (type.NameDate is not null && !type.TryDateFromName(name, out nameDate))
        {
            run.Fail(0, 0, $"the name '{name}' holds no date in the form {type.NameDate} (file type '{type.Name}' takes each file's date from its name)");
            return new IngestResult(run, null, 0);
        }

        var table = type.LakeTable();
        using var stager = services.Lake.BeginStaging($"{recipe}-{type.Name}");
        var writer = type.NameDate is null ? new PartitionedParquetWriter(table, stager, type.EventTime) : new PartitionedParquetWriter(table, stager, nameDate);
        await using (writer.ConfigureAwait(false))
        {
            var channel = Channel.CreateBounded<ColumnBatch>(new BoundedChannelOptions(ChannelCapacity) { SingleReader = true, SingleWriter = true });
            var writing = Task.Run(() => WriteAllAsync(channel, writer, ct), ct);
            string? hash = null;
            try
            {
                var stream = new HashingReadStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan));
                await using (stream.ConfigureAwait(false))
                {
                    await RecordFileReaders.For(type).ReadAsync(stream, run, (b, t) =>
                    {
                        Tap?.Publish(null, b, name);
                        return channel.Writer.WriteAsync(b, t);
                    }, ct).ConfigureAwait(false);
                    if (stream.ReachedEnd) { hash = stream.HashHex(); }
                }
            }
            finally
            {
                channel.Writer.TryComplete();
            }

            await writing.ConfigureAwait(false);
            PipelineTracing.FileRead(span, run.Rows, run.BadRows, run.Rejected ? run.Reason() : null);
            if (run.Rejected)
            {
                return new IngestResult(run, null, 0);
            }

            await writer.CompleteAsync(ct).ConfigureAwait(false);
            hash ??= await HashingReadStream.HashFileAsync(path, ct).ConfigureAwait(false);
            hash = LedgerKey(hash, type, name);
            var partitions = stager.Files.Select(f => f.PartitionValue).Distinct(StringComparer.Ordinal).Count();
            await commitGate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (AlreadyIngested(hash))
                {
                    span?.SetTag("sluice.file.duplicate", true);
                    return new IngestResult(run, hash, 0, Duplicate: true);
                }

                using var commit = PipelineTracing.Commit(recipe, Pipeline, FilesSource.LakeSinkName, type.Table, span is null ? [] : [span.Context], run.Rows);
                services.Lake.Commit(stager, (c, tx) => RecordCommitFirst(c, tx, run, hash));
            }
            catch (LakeConflictException)
            {
                // Another worker of the cluster committed this content first (its claim was taken for dead): theirs stands.
                span?.SetTag("sluice.file.duplicate", true);
                return new IngestResult(run, hash, 0, Duplicate: true);
            }
            finally
            {
                commitGate.Release();
            }

            return new IngestResult(run, hash, partitions);
        }
    }

    /// <summary>
    /// The key of a file in the ledger of ingested content: its content hash, and for a type dated by the file name also
    /// that date, since the same content under another date (an unchanged full export) is new input for that date.
    /// </summary>
    public static string LedgerKey(string contentHash, FileType? type, string fileName) =>
        type is not null && type.TryDateFromName(fileName, out var date) ? $"{contentHash}@{date:yyyy-MM-dd}" : contentHash;

    /// <summary>
    /// Reads and validates a small file entirely into memory, to be committed later together with other small files
    /// (<see cref="CommitGroupAsync"/>): many small drops then make few Parquet files and one transaction.
    /// </summary>
    public async Task<ParsedFile> ParseAsync(string path, FileType type, CancellationToken ct)
    {
        var name = Path.GetFileName(path);
        using var span = PipelineTracing.File(recipe, Pipeline, name, type.Name);
        var run = new IngestRun(type, name, options.BatchRows, services.Time.GetUtcNow().UtcDateTime);
        var batches = new List<ColumnBatch>();
        var bytes = new FileInfo(path).Length;
        if (bytes == 0)
        {
            run.Fail(0, 0, "the file is empty (0 bytes)");
            PipelineTracing.FileRead(span, 0, 0, run.Reason());
            return new ParsedFile(path, type, run, batches, null, bytes);
        }

        string? hash = null;
        var stream = new HashingReadStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan));
        await using (stream.ConfigureAwait(false))
        {
            await RecordFileReaders.For(type).ReadAsync(stream, run, (b, _) =>
            {
                Tap?.Publish(null, b, name);
                batches.Add(b);
                return ValueTask.CompletedTask;
            }, ct).ConfigureAwait(false);
            if (stream.ReachedEnd) { hash = LedgerKey(stream.HashHex(), type, name); }
        }

        PipelineTracing.FileRead(span, run.Rows, run.BadRows, run.Rejected ? run.Reason() : null);
        return new ParsedFile(path, type, run, batches, hash, bytes) { Trace = span?.Context ?? default };
    }

    /// <summary>
    /// Writes valid parsed files of one type as one unit: one staged Parquet file per partition for all of them, and
    /// one transaction naming those files, every file's hash and every quarantined record. Content already in the
    /// ledger, or twice in the group, is left out and reported as a duplicate. The Parquet encoding, the costly part,
    /// runs outside the commit gate, so two groups can encode at once; only the ledger check and the commit are serial.
    /// </summary>
    public async Task<IReadOnlyList<(ParsedFile File, bool Duplicate)>> CommitGroupAsync(FileType type, IReadOnlyList<ParsedFile> files, CancellationToken ct)
    {
        var results = Deduplicate(files);
        var stager = await StageGroupAsync(type, results, ct).ConfigureAwait(false);
        try
        {
            await commitGate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                for (var attempt = 1; ; attempt++)
                {
                    if (attempt > 1 || results.Any(r => !r.Duplicate && AlreadyIngested(r.File.Hash!)))
                    {
                        // Another group committed some of this content meanwhile (the same file dropped twice at once, or
                        // another worker of a cluster took this file's claim for dead): stage again without it, now inside
                        // the gate so the answer cannot change again in this process.
                        stager.Dispose();
                        results = Deduplicate(files);
                        stager = await StageGroupAsync(type, results, ct).ConfigureAwait(false);
                    }

                    var landing = results.Where(r => !r.Duplicate).Select(r => r.File).ToList();
                    using var commit = PipelineTracing.Commit(recipe, Pipeline, FilesSource.LakeSinkName, type.Table,
                        landing.Select(f => f.Trace).Where(t => t != default).ToList(), landing.Sum(f => f.Run.Rows));
                    try
                    {
                        services.Lake.Commit(stager, (c, tx) =>
                        {
                            foreach (var f in landing)
                            {
                                RecordCommitFirst(c, tx, f.Run, f.Hash!);
                            }
                        });
                        return results;
                    }
                    catch (LakeConflictException) when (attempt < 3)
                    {
                        // The ledger of the shared store already had some of it: the next attempt stages without it.
                    }
                }
            }
            finally
            {
                commitGate.Release();
            }
        }
        finally
        {
            stager.Dispose();
        }
    }

    private List<(ParsedFile File, bool Duplicate)> Deduplicate(IReadOnlyList<ParsedFile> files)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return files.Select(f => (File: f, Duplicate: AlreadyIngested(f.Hash!) || !seen.Add(f.Hash!))).ToList();
    }

    private async Task<LakeStager> StageGroupAsync(FileType type, List<(ParsedFile File, bool Duplicate)> results, CancellationToken ct)
    {
        var stager = services.Lake.BeginStaging($"{recipe}-{type.Name}");
        try
        {
            var writer = new PartitionedParquetWriter(type.LakeTable(), stager, type.EventTime);
            await using (writer.ConfigureAwait(false))
            {
                foreach (var batch in results.Where(r => !r.Duplicate).SelectMany(r => r.File.Batches))
                {
                    await writer.WriteAsync(batch, ct).ConfigureAwait(false);
                }

                await writer.CompleteAsync(ct).ConfigureAwait(false);
            }

            return stager;
        }
        catch
        {
            stager.Dispose();
            throw;
        }
    }

    /// <summary>Checks a file against the ledger of ingested content, without reading it as records.</summary>
    public bool AlreadyIngested(string hash) => new FileLedger(services.Metadata, services.Time).Contains(recipe, hash);

    /// <summary>
    /// A file's ledger entry and dead letters, unless its ledger entry is there already: a files pipeline's file is
    /// recorded by each sink that commits into the metadata store and by the source once every sink has it.
    /// </summary>
    public void RecordCommitOnce(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, IngestRun run, string hash)
    {
        if (!FileLedger.Contains(c, tx, recipe, hash))
        {
            RecordCommit(c, tx, run, hash);
        }
    }

    /// <summary>
    /// Records a file's commit, refusing the whole lake commit (<see cref="LakeConflictException"/>) when the ledger has
    /// its content already. The lake commit holds the store's write lock, so on a cluster's shared store this check sees
    /// every other worker's commits: a file two workers ingested (one took the other's claim for dead) lands once.
    /// </summary>
    private void RecordCommitFirst(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, IngestRun run, string hash)
    {
        if (FileLedger.Contains(c, tx, recipe, hash))
        {
            throw new LakeConflictException($"file '{run.FileName}': its content is in the ledger already (committed meanwhile by another process); nothing was committed");
        }

        RecordCommit(c, tx, run, hash);
    }

    private void RecordCommit(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, IngestRun run, string hash)
    {
        new FileLedger(services.Metadata, services.Time).Record(c, tx, new LedgerEntry(recipe, hash, run.FileName, run.Type.Name, run.Rows, run.BadRows));
        foreach (var q in run.Quarantined)
        {
            services.DeadLetters.Add(c, tx, FilesSource.RecordSource(recipe, run.Type.Name), q.Issue.Position(run.FileName), q.Issue.Message, q.Payload,
                $"files:{recipe}:{hash}:{q.Issue.Record}");
        }
    }

    private static async Task WriteAllAsync(Channel<ColumnBatch> channel, PartitionedParquetWriter writer, CancellationToken ct)
    {
        try
        {
            await foreach (var batch in channel.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await writer.WriteAsync(batch, ct).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            // Unblocks the reader, which would otherwise wait forever on a full channel nobody drains.
            channel.Writer.TryComplete(e);
            throw;
        }
    }
}

/// <summary>A small file read into memory and validated, waiting for its group's commit.</summary>
internal sealed record ParsedFile(string Path, FileType Type, IngestRun Run, List<ColumnBatch> Batches, string? Hash, long Bytes)
{
    /// <summary>The file's span (<see cref="PipelineTracing.File"/>), which the group commit that lands it links to; default when tracing is off.</summary>
    public System.Diagnostics.ActivityContext Trace { get; init; }

    public int Partitions
    {
        get
        {
            var index = Run.Shape.EventTimeIndex;
            return Batches.SelectMany(b => ((DateTime?[])b.Columns[index]).Take(b.Count)).Select(t => t!.Value.Date).Distinct().Count();
        }
    }
}

/// <summary>The result of reading one file: the run (counts, problems) and, when it was committed, its hash.</summary>
internal sealed record IngestResult(IngestRun Run, string? Hash, int Partitions, bool Duplicate = false);
