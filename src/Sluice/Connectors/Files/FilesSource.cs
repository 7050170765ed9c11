using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Lake;

namespace Sluice.Connectors.Files;

/// <summary>The <c>files</c> source type: a drop folder whose files are ingested into lake tables by their file type.</summary>
public sealed class FilesSourceType : ISourceType
{
    public string Name => "files";

    public ISourceFactory Parse(Core.Config.ConfigMap options, RecipeContext recipe)
    {
        var parsed = FilesOptions.Parse(options, recipe.Name);
        var types = FileTypeCatalog.LoadFolder(Path.Combine(recipe.Folder, parsed.FileTypes), recipe.Errors);
        return new FilesSourceFactory(recipe.Name, parsed, types) { Pipeline = SourcePipeline.NameOf(options, "files") };
    }
}

/// <summary>Without sinks the source lands each file in the lake itself (<see cref="Create"/>); with sinks it hands each file on as one batch (<see cref="CreateStream"/>).</summary>
public sealed class FilesSourceFactory(string recipe, FilesOptions options, IReadOnlyList<FileType> types) : Core.Pipeline.IStreamSourceFactory, IStandaloneSource, IWritesLakeTables, Core.Pipeline.IKnownBatchTables, Core.Pipeline.ILogSequencedSourceFactory
{
    /// <summary>With sinks: the shipped file types' tables, as handed on (named without their zone).</summary>
    public IReadOnlyList<TableSchema> BatchTables => types.Select(t => new TableSchema(FilesSource.BatchTableName(t), t.Columns)).ToList();

    /// <summary>The shipped file types' tables (types added later with <c>sluice filetypes add</c> are not known at load).</summary>
    public IEnumerable<string> LakeTables => types.Select(t => t.Table);

    public FilesOptions Options => options;

    public IReadOnlyList<FileType> ShippedTypes => types;

    /// <summary>The pipeline the source belongs to (its files' positions are kept under it).</summary>
    public string Pipeline { get; init; } = "files";

    public IRunnableSource Create(IEngineServices services) => new FilesSource(services, recipe, options, types);

    public Core.Pipeline.IStreamSource CreateStream(IEngineServices services) => new FilesSource(services, recipe, options, types, Pipeline);
}

/// <summary>
/// Watches a drop folder and ingests each complete file exactly once. Claiming is an atomic rename into processing/;
/// a file leaves processing/ only after its outcome is durable, so a file found there at start is either already
/// committed (its hash is in the ledger: it just moves on) or is ingested again from scratch.
/// </summary>
public sealed partial class FilesSource : IRunnableSource, IDeadLetterReplayer, Core.Status.IStatusSource
{
    private readonly FileUnits? _units;
    private readonly FileClaims? _claims;
    private readonly IEngineServices _services;
    private readonly string _recipe;
    private readonly FilesOptions _options;
    private readonly ILogger _log;
    private readonly FileTypeCatalog _catalog;
    private readonly FileIngestor _ingestor;
    private readonly StabilityTracker _tracker;
    private readonly SemaphoreSlim _commitGate = new(1, 1);
    private readonly HashSet<string> _registered = new(StringComparer.Ordinal);
    private volatile bool _waitingForSpace;
    private Core.Status.PipelineStatus? _status;

    /// <param name="pipeline">The pipeline whose sinks take the files (<see cref="ReadAsync"/>); null when the source lands them in the lake itself.</param>
    public FilesSource(IEngineServices services, string recipe, FilesOptions options, IReadOnlyList<FileType> shipped, string? pipeline = null)
    {
        _services = services;
        _recipe = recipe;
        _options = options;
        _log = services.Logging.CreateLogger("Sluice.Files");
        _catalog = new FileTypeCatalog(services.Metadata, services.Time);
        _catalog.SyncRecipeTypes(recipe, shipped);
        _ingestor = new FileIngestor(services, recipe, options, _commitGate);
        _tracker = new StabilityTracker(options.StableAfter);
        // On a cluster's shared store the drop folder is in the shared folder, watched by every worker, and a file is
        // taken by a claim in the store (FileClaims); its lake must be shared too (Storage says what to set if it is not).
        var shared = services.Metadata.Shared;
        if (services.Cluster is not null && shared is null)
        {
            throw new Core.SluiceException($"{recipe}: files in cluster mode: the workers share the drop folder's claims and the ledger in the cluster's metadata store; set {Core.Metadata.SharedMetadata.PostgresVariable} and {Core.Metadata.SharedMetadata.FolderVariable} (docs/SCALING.md, \"Files\")");
        }

        if (shared is not null) { _ = services.Lake.Storage; }
        Drop = new DropFolder(Path.Combine(shared?.Folder ?? services.Data.Root, options.Folder));
        Drop.EnsureCreated();
        CheckpointScope = shared is null || pipeline is null ? null : Core.Pipeline.WorkerCheckpointScope.Of(Sluice.Cluster.WorkerIdentity.Of(services.Data, Environment.GetEnvironmentVariable));
        _units = pipeline is null ? null : new FileUnits(services.Metadata, recipe, pipeline, CheckpointScope ?? "");
        _claims = shared is null ? null : new FileClaims(services.Metadata, services.Time, recipe, services.Cluster?.AckWait ?? DefaultClaimLease, _log) { Registry = services.Worker };
        RegisterTables(_catalog.All(recipe));
    }

    public DropFolder Drop { get; }

    public TimeSpan DrainTimeout => _options.DrainTimeout;

    /// <summary>A claim's lease on a shared drop folder outside <c>run --cluster</c> (there it is <c>SLUICE_CLUSTER_ACK_WAIT</c>).</summary>
    public static TimeSpan DefaultClaimLease { get; } = TimeSpan.FromSeconds(30);

    /// <summary>The files this worker holds on a shared drop folder (empty on a data folder's own).</summary>
    public IReadOnlyCollection<string> Claimed => _claims?.Held ?? [];

    /// <summary>How long a file that met a full disk waits in processing/ before it is tried again.</summary>
    public static TimeSpan DiskFullRetry { get; } = TimeSpan.FromSeconds(2);

    /// <summary>Dead-letter source of a quarantined record of one file type.</summary>
    public static string RecordSource(string recipe, string fileType) => $"files:{recipe}/{fileType}";

    /// <summary>Dead-letter source of a whole rejected file.</summary>
    public static string FileSource(string recipe) => $"files:{recipe}";

    /// <summary>Everything stable in incoming/ (and anything left in processing/ by a crash), waiting briefly for files still being written.</summary>
    public async Task<int> RunOnceAsync(CancellationToken ct)
    {
        using var leases = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var keepAlive = _claims?.KeepAliveAsync(leases.Token) ?? Task.CompletedTask;
        try
        {
            return await RunOnceClaimedAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            await leases.CancelAsync().ConfigureAwait(false);
            await keepAlive.ConfigureAwait(false);
        }
    }

    private async Task<int> RunOnceClaimedAsync(CancellationToken ct)
    {
        var landed = await RecoverAsync(ownClaims: false, ct).ConfigureAwait(false);
        var started = _services.Time.GetUtcNow();
        while (true)
        {
            var stable = _tracker.Observe(Drop.ListIncoming(), _services.Time.GetUtcNow(), out var waiting);
            if (stable.Count > 0)
            {
                landed += await ProcessAsync(stable, ct, ct).ConfigureAwait(false);
                continue;
            }

            if (waiting == 0 || _services.Time.GetUtcNow() - started > _options.OnceWait)
            {
                if (_waitingForSpace)
                {
                    throw new Core.SluiceException($"no space left on device: {Directory.EnumerateFiles(Drop.Processing).Count()} file(s) stay in {Drop.Processing} ({landed} landed); free space and run again");
                }

                return landed;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(50, _options.StableAfter.TotalMilliseconds / 2)), _services.Time, ct).ConfigureAwait(false);
        }
    }

    public async Task RunAsync(Func<CancellationToken, Task> afterLoad, CancellationToken ct)
    {
        // Files already claimed get DrainTimeout to finish after a stop; only then is their work abandoned.
        using var abort = new CancellationTokenSource();
        await using var onStop = ct.Register(() => abort.CancelAfter(_options.DrainTimeout)).ConfigureAwait(false);
        // Leases are renewed until the files in hand are finished or abandoned, not merely until the stop is asked.
        var keepAlive = _claims?.KeepAliveAsync(abort.Token) ?? Task.CompletedTask;
        try
        {
            await RunClaimedAsync(afterLoad, abort, ct).ConfigureAwait(false);
        }
        finally
        {
            await abort.CancelAsync().ConfigureAwait(false);
            await keepAlive.ConfigureAwait(false);
        }
    }

    private async Task RunClaimedAsync(Func<CancellationToken, Task> afterLoad, CancellationTokenSource abort, CancellationToken ct)
    {
        if (await RecoverAsync(ownClaims: false, abort.Token).ConfigureAwait(false) > 0)
        {
            await afterLoad(ct).ConfigureAwait(false);
        }

        var spaceTried = _services.Time.GetUtcNow();
        while (!ct.IsCancellationRequested)
        {
            if (_waitingForSpace && _services.Time.GetUtcNow() - spaceTried >= DiskFullRetry)
            {
                // Nothing is in flight between looks, so processing/ holds only the files that waited for space.
                _waitingForSpace = false;
                spaceTried = _services.Time.GetUtcNow();
                Core.IO.DiskFull.Retrying(_log, Directory.EnumerateFiles(Drop.Processing).Count());
                if (await RecoverAsync(ownClaims: true, abort.Token).ConfigureAwait(false) > 0)
                {
                    await afterLoad(ct).ConfigureAwait(false);
                }

                continue;
            }

            var stable = _tracker.Observe(Drop.ListIncoming(), _services.Time.GetUtcNow(), out _);
            if (stable.Count > 0)
            {
                if (await ProcessAsync(stable, ct, abort.Token).ConfigureAwait(false) > 0)
                {
                    await afterLoad(ct).ConfigureAwait(false);
                }

                continue;
            }

            // On a shared drop folder, files another worker claimed and stopped renewing (it died) are taken over.
            if (_claims is not null && await RecoverLeftoversAsync(ownClaims: false, abort.Token).ConfigureAwait(false) > 0)
            {
                await afterLoad(ct).ConfigureAwait(false);
                continue;
            }

            try
            {
                await Task.Delay(_options.PollInterval, _services.Time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>Files in processing/ at start: committed ones move on, the others are ingested again; files in failed/ get their letter if it is missing.</summary>
    private async Task<int> RecoverAsync(bool ownClaims, CancellationToken ct)
    {
        if (FailedFileLetter.RecoverMissing(_services.DeadLetters, Drop, _recipe) is var lettered and > 0)
        {
            FilesLog.LetteredAgain(_log, lettered);
        }

        return await RecoverLeftoversAsync(ownClaims, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Files in processing/ that nobody works on: on a data folder's own drop, all of them (at start, or after a full
    /// disk); on a shared one, those whose claim this worker gets (no live lease of another), and its own ones when
    /// <paramref name="ownClaims"/> (they waited for space).
    /// </summary>
    private async Task<int> RecoverLeftoversAsync(bool ownClaims, CancellationToken ct)
    {
        var leftovers = Directory.EnumerateFiles(Drop.Processing).Order(StringComparer.Ordinal).ToList();
        if (_claims is not null)
        {
            leftovers = leftovers.Where(p => Path.GetFileName(p) is var name && (_claims.Holds(name) ? ownClaims : _claims.TryClaim(name))).ToList();
        }

        var redo = new List<string>();
        var types = leftovers.Count == 0 ? [] : _catalog.All(_recipe);
        foreach (var path in leftovers)
        {
            string content;
            try
            {
                content = await HashingReadStream.HashFileAsync(path, ct).ConfigureAwait(false);
            }
            catch (FileNotFoundException) when (_claims is not null)
            {
                // Its worker moved it out between our look and our claim (and let the claim go): nothing left to do.
                _claims.Release(Path.GetFileName(path));
                continue;
            }

            var hash = FileIngestor.LedgerKey(content, FileTypeCatalog.Match(types, Path.GetFileName(path)), Path.GetFileName(path));
            if (_ingestor.AlreadyIngested(hash))
            {
                Drop.MoveToProcessed(path);
                FilesLog.Recovered(_log, Path.GetFileName(path));
                _claims?.Release(Path.GetFileName(path));
            }
            else
            {
                FilesLog.Resumed(_log, Path.GetFileName(path));
                redo.Add(path);
            }
        }

        return redo.Count == 0 ? 0 : await IngestClaimedAsync(redo, ct).ConfigureAwait(false);
    }

    private async Task<int> ProcessAsync(List<string> stableNames, CancellationToken stop, CancellationToken abort)
    {
        var claimed = new List<string>();
        foreach (var name in stableNames)
        {
            if (stop.IsCancellationRequested) { break; }
            _tracker.Forget(name);
            if (TryClaim(name, out var path)) { claimed.Add(path); }
        }

        return await IngestClaimedAsync(claimed, abort).ConfigureAwait(false);
    }

    /// <summary>Takes a file of incoming/: on a shared drop folder its claim first, then the rename (the claim goes again when the file went meanwhile).</summary>
    private bool TryClaim(string name, out string path)
    {
        path = Path.Combine(Drop.Processing, name);
        if (_claims is null)
        {
            return Drop.TryClaim(name, out path);
        }

        if (!_claims.TryClaim(name))
        {
            return false;
        }

        if (Drop.TryClaim(name, out path))
        {
            return true;
        }

        _claims.Release(name);
        return false;
    }

    /// <summary>
    /// Large files stream through on their own (bounded memory whatever their size); small ones are parsed in parallel
    /// and committed in groups of up to <see cref="FilesOptions.GroupMaxBytes"/>, so a burst of small drops makes few
    /// Parquet files and few transactions.
    /// </summary>
    private async Task<int> IngestClaimedAsync(List<string> claimed, CancellationToken ct)
    {
        var types = _catalog.All(_recipe);
        RegisterTables(types);
        claimed = LoadOrder(claimed, types);
        // Types dated by the file name land one file at a time in load order (each file is its date's partition).
        var small = _options.GroupMaxBytes > 0
            ? claimed.Where(p => SizeOf(p) <= _options.GroupMaxBytes / 4 && FileTypeCatalog.Match(types, Path.GetFileName(p)) is not { NameDate: not null }).ToList()
            : [];
        var large = claimed.Except(small, StringComparer.Ordinal).ToList();
        var counter = new IngestCounter();
        await Parallel.ForEachAsync(large, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelFiles }, async (path, _) =>
            await GuardAsync(path, counter, async () => Report(await IngestOneAsync(path, types, ct).ConfigureAwait(false), counter), ct).ConfigureAwait(false)).ConfigureAwait(false);
        if (small.Count > 0)
        {
            await IngestGroupedAsync(small, types, counter, ct).ConfigureAwait(false);
        }

        if (counter.Unfinished > 0)
        {
            FilesLog.Abandoned(_log, counter.Unfinished);
            ct.ThrowIfCancellationRequested();
        }

        return counter.Landed;
    }

    private async Task IngestGroupedAsync(List<string> small, IReadOnlyList<FileType> types, IngestCounter counter, CancellationToken ct)
    {
        // Parsers run ahead of the committer by at most 8 parsed small files (each at most a quarter of a group), so
        // they keep working while a group is written, and memory stays within about three groups.
        var parsed = Channel.CreateBounded<(string Path, FileType? Type, ParsedFile? File)>(Math.Max(8, _options.MaxParallelFiles));
        var parsing = Task.Run(async () =>
        {
            try
            {
                await Parallel.ForEachAsync(small, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelFiles, CancellationToken = ct }, async (path, token) =>
                    await GuardAsync(path, counter, async () =>
                    {
                        var type = FileTypeCatalog.Match(types, Path.GetFileName(path));
                        var file = type is null ? null : await _ingestor.ParseAsync(path, type, token).ConfigureAwait(false);
                        await parsed.Writer.WriteAsync((path, type, file), token).ConfigureAwait(false);
                    }, token).ConfigureAwait(false)).ConfigureAwait(false);
            }
            finally
            {
                parsed.Writer.TryComplete();
            }
        }, CancellationToken.None);

        var groups = new Dictionary<string, (FileType Type, List<ParsedFile> Files, long Bytes)>(StringComparer.Ordinal);
        // Up to two groups are written at once: Parquet encoding is the committer's heavy part, and with one at a time the
        // parsers soon wait for it and a core idles. Memory stays within about four groups.
        var committing = new List<Task>();
        async Task StartCommitAsync(FileType type, List<ParsedFile> files)
        {
            while (committing.Count >= 2)
            {
                var done = await Task.WhenAny(committing).ConfigureAwait(false);
                committing.Remove(done);
                await done.ConfigureAwait(false);
            }

            committing.Add(Task.Run(() => GuardAsync(files[0].Path, counter, () => CommitGroupAsync(type, files, counter, ct), ct), CancellationToken.None));
        }

        try
        {
            await foreach (var (path, type, file) in parsed.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await GuardAsync(path, counter, async () =>
                {
                    if (type is null || file is null)
                    {
                        Report(await FailAsync(path, null, new IngestRunFailure(NoTypeReason(types, Path.GetFileName(path))), ct).ConfigureAwait(false), counter);
                        return;
                    }

                    if (file.Run.Rejected)
                    {
                        Report(await FailAsync(path, type, new IngestRunFailure(file.Run), ct).ConfigureAwait(false), counter);
                        return;
                    }

                    var group = groups.GetValueOrDefault(type.Name, (type, [], 0));
                    group.Files.Add(file);
                    group.Bytes += file.Bytes;
                    groups[type.Name] = group;
                    if (group.Bytes >= _options.GroupMaxBytes)
                    {
                        groups.Remove(type.Name);
                        await StartCommitAsync(group.Type, group.Files).ConfigureAwait(false);
                    }
                }, ct).ConfigureAwait(false);
            }

            foreach (var (type, files, _) in groups.Values)
            {
                await StartCommitAsync(type, files).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            counter.Abandon(groups.Values.Sum(g => g.Files.Count));
        }
        finally
        {
            await Task.WhenAll(committing).ConfigureAwait(false);
        }

        await parsing.ConfigureAwait(false);
    }

    private async Task CommitGroupAsync(FileType type, List<ParsedFile> files, IngestCounter counter, CancellationToken ct)
    {
        foreach (var (file, duplicate) in await _ingestor.CommitGroupAsync(type, files, ct).ConfigureAwait(false))
        {
            var name = Path.GetFileName(file.Path);
            Core.CrashPoint.Reach("files.committed");
            var final = Drop.MoveToProcessed(file.Path);
            if (duplicate)
            {
                FilesLog.Duplicate(_log, name);
                Report(new FileOutcome(name, type.Name, FileStatus.Duplicate, 0, 0, 0, "same content as a file ingested before", final), counter);
                continue;
            }

            var partitions = file.Partitions;
            FilesLog.Landed(_log, name, file.Run.Rows, type.Table, partitions, file.Run.BadRows);
            Report(new FileOutcome(name, type.Name, FileStatus.Landed, file.Run.Rows, file.Run.BadRows, partitions, null, final), counter);
        }
    }

    private async Task GuardAsync(string path, IngestCounter counter, Func<Task> work, CancellationToken ct)
    {
        try
        {
            await work().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            counter.Abandon(1);
        }
        catch (Exception e) when (Core.IO.DiskFull.Is(e))
        {
            // Not a defect of the file: it stays claimed and is tried again in this run once space is freed.
            Core.IO.DiskFull.FileWaits(_log, Path.GetFileName(path), Core.IO.DiskFull.Describe(e, _services.Data.MetadataPath), (int)DiskFullRetry.TotalSeconds);
            _waitingForSpace = true;
            _status?.Condition("no space left on device: files wait in processing/");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or Microsoft.Data.Sqlite.SqliteException or DuckDB.NET.Data.DuckDBException)
        {
            FilesLog.Crashed(_log, e, Path.GetFileName(path));
        }
    }

    /// <summary>A file is a batch: its records in, its rows out to the lake; the backlog is the files waiting in incoming/ and processing/.</summary>
    public void AttachStatus(Core.Status.PipelineStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        _status = status;
        _ingestor.Tap = status.Tap;
        _ingestor.Pipeline = status.Name;
        if (_units is null) { status.Sink(LakeSinkName); }
        status.DropFolder = Drop.Root;
        status.Backlog = () => new Core.Status.Backlog(Drop.ListIncoming().Count + Directory.EnumerateFiles(Drop.Processing).Count(), "files");
    }

    /// <summary>The name the files source's lake commits go under in the status figures.</summary>
    public const string LakeSinkName = "lake";

    private void Report(FileOutcome outcome, IngestCounter counter)
    {
        if (outcome.Status == FileStatus.Landed) { counter.Land(); }
        _claims?.Release(outcome.File);
        if (_status is { } status && _units is null)
        {
            status.Read((int)Math.Min(int.MaxValue, outcome.Rows + outcome.Quarantined), bytes: SizeOrNull(outcome.FinalPath));
            if (outcome.Status == FileStatus.Landed) { status.Committed(LakeSinkName, (int)Math.Min(int.MaxValue, outcome.Rows)); }
            else { status.NotCommitted(LakeSinkName, outcome.Status.ToString().ToLowerInvariant(), outcome.Reason); }
            status.Condition(_waitingForSpace ? "no space left on device: files wait in processing/" : null);
            // A file's rows went to Parquet without passing through here as a batch: the tap shows each file's outcome.
            status.Tap.Publish(null, () => new { file = outcome.File, type = outcome.FileType, status = outcome.Status.ToString().ToLowerInvariant(), rows = outcome.Rows, quarantined = outcome.Quarantined, reason = outcome.Reason });
        }

        Outcomes?.Invoke(outcome);
    }

    private static long? SizeOrNull(string path) => SizeOf(path) is var size && size != long.MaxValue ? size : null;

    private static long SizeOf(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return long.MaxValue;
        }
    }

    private static string NoTypeReason(IReadOnlyList<FileType> types, string name)
    {
        var known = types.Count == 0 ? "none defined" : string.Join(", ", types.Select(t => t.Pattern));
        return $"no file type matches the name '{name}' (known patterns: {known})";
    }

    private sealed class IngestCounter
    {
        private int _landed;
        private int _unfinished;

        public int Landed => Volatile.Read(ref _landed);

        public int Unfinished => Volatile.Read(ref _unfinished);

        public void Land() => Interlocked.Increment(ref _landed);

        public void Abandon(int files) => Interlocked.Add(ref _unfinished, files);
    }

    /// <summary>
    /// Files whose type takes its date from the name go in the order of that date, then of the type's load order
    /// (customers before sales of the same day), then of the name; the others follow by name. With one file at a time
    /// (<c>max_parallel_files: 1</c>) they also land in that order.
    /// </summary>
    internal static List<string> LoadOrder(List<string> paths, IReadOnlyList<FileType> types) =>
        paths.Select(p =>
            {
                var name = Path.GetFileName(p);
                var type = FileTypeCatalog.Match(types, name);
                var date = DateOnly.MaxValue;
                if (type is not null && type.TryDateFromName(name, out var d)) { date = d; }
                return (Path: p, Date: date, Order: type?.LoadOrder ?? 0, Name: name);
            })
            .OrderBy(x => x.Date).ThenBy(x => x.Order).ThenBy(x => x.Name, StringComparer.Ordinal)
            .Select(x => x.Path)
            .ToList();

    /// <summary>Raised for every file that reached an outcome (for the demo's and tests' eyes; logging covers operators).</summary>
    public event Action<FileOutcome>? Outcomes;

    private async Task<FileOutcome> IngestOneAsync(string path, IReadOnlyList<FileType> types, CancellationToken ct)
    {
        var name = Path.GetFileName(path);
        var type = FileTypeCatalog.Match(types, name);
        if (type is null)
        {
            return await FailAsync(path, null, new IngestRunFailure(NoTypeReason(types, name)), ct).ConfigureAwait(false);
        }

        var result = await _ingestor.IngestAsync(path, type, ct).ConfigureAwait(false);
        var run = result.Run;
        if (run.Rejected)
        {
            return await FailAsync(path, type, new IngestRunFailure(run), ct).ConfigureAwait(false);
        }

        var final = Drop.MoveToProcessed(path);
        if (result.Duplicate)
        {
            FilesLog.Duplicate(_log, name);
            return new FileOutcome(name, type.Name, FileStatus.Duplicate, 0, 0, 0, "same content as a file ingested before", final);
        }

        FilesLog.Landed(_log, name, run.Rows, type.Table, result.Partitions, run.BadRows);
        return new FileOutcome(name, type.Name, FileStatus.Landed, run.Rows, run.BadRows, result.Partitions, null, final);
    }

    private async Task<FileOutcome> FailAsync(string path, FileType? type, IngestRunFailure failure, CancellationToken ct)
    {
        var name = Path.GetFileName(path);
        var hash = await HashingReadStream.HashFileAsync(path, ct).ConfigureAwait(false);
        var run = failure.Run;
        var first = run?.Fatal ?? (run is { Issues.Count: > 0 } ? run.Issues[0] : null);
        var rejection = new FileRejection(
            name, type?.Name, failure.Reason, first?.Line, first?.Record, first?.Field,
            run is null ? 0 : run.BadRows + (run.Fatal is null ? 0 : 1),
            (run?.Fatal is null ? [] : new[] { run.Fatal }).Concat(run?.Issues ?? []).Select(i => new FileRejection.Issue(i.Line, i.Record, i.Field, i.Message)).ToList(),
            hash, _services.Time.GetUtcNow());
        // The letter first, naming the file's place in failed/: a kill before the move leaves the file in processing/,
        // where the next start ingests it again, it fails again, and the letter (keyed by the content) is renewed, not
        // doubled; a kill after it leaves both. The other order left a failed file that dlq list did not show.
        var final = Drop.FailedTarget(name, hash);
        FailedFileLetter.Record(_services.DeadLetters, _recipe, rejection, final);
        CrashPoint.Reach(CrashPoint.FailedFileLettered);
        Drop.MoveToFailed(path, final, rejection.ToJson());
        FilesLog.Failed(_log, name, failure.Reason);
        return new FileOutcome(name, type?.Name, FileStatus.Failed, 0, 0, 0, failure.Reason, final);
    }

    private void RegisterTables(IReadOnlyList<FileType> types)
    {
        if (_units is not null)
        {
            return; // with sinks, the lake sink names and registers the tables it writes
        }

        foreach (var t in types)
        {
            var key = t.Table + "|" + string.Join(",", t.Fields.Select(f => f.Name + ":" + f.Type));
            if (_registered.Add(key))
            {
                _services.Lake.Register(t.LakeTable());
            }
        }
    }

    public bool CanReplay(DeadLetter letter) =>
        letter.Source == FileSource(_recipe) || letter.Source.StartsWith(FileSource(_recipe) + "/", StringComparison.Ordinal);

    /// <summary>Why a quarantined record cannot be replayed on its own with sinks: it would go to the lake only.</summary>
    private const string RecordReplayWithSinks =
        "a quarantined record of a files pipeline with sinks is not replayed on its own (it would reach the lake only); correct the record in its file and drop the file again";

    /// <summary>
    /// A rejected file goes back to incoming/ (its .error.json is removed) to be ingested again, under the file types
    /// as they are now; a quarantined record is validated again and, when valid, lands on its own.
    /// </summary>
    public async Task<string?> ReplayAsync(DeadLetter letter, CancellationToken ct)
    {
        if (letter.Source == FileSource(_recipe))
        {
            using var doc = JsonDocument.Parse(letter.Payload ?? "{}");
            var file = doc.RootElement.TryGetProperty("failed_file", out var f) ? f.GetString() : null;
            var failed = file is null ? null : Path.Combine(Drop.Failed, file);
            if (failed is null || !File.Exists(failed))
            {
                return $"the failed file '{file}' is no longer in {Drop.Failed}";
            }

            var target = Path.Combine(Drop.Incoming, StripCollisionSuffix(file!));
            if (File.Exists(target))
            {
                return $"a file named '{Path.GetFileName(target)}' is already waiting in incoming/";
            }

            File.Move(failed, target);
            File.Delete(failed + ".error.json");
            return null;
        }

        if (_units is not null)
        {
            return RecordReplayWithSinks;
        }

        var typeName = letter.Source[(FileSource(_recipe).Length + 1)..];
        var type = _catalog.All(_recipe).FirstOrDefault(t => t.Name == typeName);
        if (type is null)
        {
            return $"file type '{typeName}' is no longer in the catalog";
        }

        var shape = new RecordShape(type);
        var builder = new ColumnBatchBuilder(shape.Schema, 16);
        var problem = type.Format == FileFormat.Csv
            ? CsvRecordReader.ParseCells(letter.Payload ?? "{}", shape, builder)
            : JsonRecordParser.Parse(System.Text.Encoding.UTF8.GetBytes(letter.Payload ?? ""), shape, builder);
        if (problem is not null)
        {
            return problem.Value.Field is null ? problem.Value.Message : $"field '{problem.Value.Field}': {problem.Value.Message}";
        }

        var table = type.LakeTable();
        var batch = builder.Flush();
        var sourceFile = letter.Position.Split(':', 2)[0];
        var nameDate = default(DateOnly);
        if (type.NameDate is not null && !type.TryDateFromName(sourceFile, out nameDate))
        {
            return $"the position '{letter.Position}' names no file with a date in the form {type.NameDate}";
        }

        if (type.Lineage)
        {
            var record = RecordNumber().Match(letter.Position) is { Success: true } m ? long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
            batch = new ColumnBatch(table.Schema, [.. batch.Columns, new string?[] { sourceFile }, new long?[] { record }, new DateTime?[] { _services.Time.GetUtcNow().UtcDateTime }], batch.Count);
        }

        _services.Lake.Register(table);
        using var stager = _services.Lake.BeginStaging($"{_recipe}-{type.Name}-replay");
        var writer = type.NameDate is null ? new PartitionedParquetWriter(table, stager, type.EventTime) : new PartitionedParquetWriter(table, stager, nameDate);
        await using (writer.ConfigureAwait(false))
        {
            await writer.WriteAsync(batch, ct).ConfigureAwait(false);
            await writer.CompleteAsync(ct).ConfigureAwait(false);
        }

        _services.Lake.Commit(stager, (c, tx) => _services.DeadLetters.MarkReplayed(letter.Id, c, tx));
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        // The claims of files still in hand are renewed until here (the pipeline has drained); then they run out for another worker.
        await _leases.CancelAsync().ConfigureAwait(false);
        if (_keepAlive is not null) { await _keepAlive.ConfigureAwait(false); }
        _leases.Dispose();
        _commitGate.Dispose();
        _finishing.Dispose();
    }

    private static string StripCollisionSuffix(string name)
    {
        var stem = Path.GetFileNameWithoutExtension(name);
        var tilde = stem.LastIndexOf('~');
        return tilde > 0 && int.TryParse(stem[(tilde + 1)..], out _) ? stem[..tilde] + Path.GetExtension(name) : name;
    }

    private sealed class IngestRunFailure
    {
        public IngestRunFailure(string reason) => Reason = reason;

        public IngestRunFailure(IngestRun run)
        {
            Run = run;
            Reason = run.Reason();
        }

        public IngestRun? Run { get; }

        public string Reason { get; }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"record (\d+)")]
    private static partial System.Text.RegularExpressions.Regex RecordNumber();
}
