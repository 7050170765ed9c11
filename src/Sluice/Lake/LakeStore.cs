using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.Core.Schema;
using Sluice.Lake.Storage;

namespace Sluice.Lake;

/// <summary>
/// The Parquet lake and its manifest. A file is part of a table only once a row in <c>lake_files</c> names it, and that
/// row is written in the same metadata transaction as the checkpoint of the input it came from. So a unit of work becomes
/// visible all at once (queries read the manifest, not a glob). Before renaming files into the lake a commit reserves
/// their names (<c>lake_reserved</c>), so a crash before the commit leaves only reserved files, which
/// <see cref="SweepOrphans"/> removes; it never deletes a file it cannot prove is its own.
/// The manifest is in the metadata store, a data folder's SQLite or a cluster's shared Postgres schema (same SQL); the
/// files are on <see cref="ILakeStorage"/>: the data folder's <c>lake/</c>, or <c>lake/</c> of the cluster's shared folder.
/// </summary>
public sealed class LakeStore
{
    /// <summary>How long a replaced file stays on disk, so that queries that already listed it can finish.</summary>
    public static readonly TimeSpan GarbageGrace = TimeSpan.FromMinutes(5);

    private readonly DataDirectory data;
    private readonly MetadataStore store;
    private readonly TimeProvider time;
    private readonly ILakeStorage? _storage;

    public LakeStore(DataDirectory data, MetadataStore store, TimeProvider time)
        : this(data, store, time, StorageFor(data, store))
    {
    }

    /// <param name="storage">Where the files are; null for a shared store without a shared folder (every use of the files is refused, naming the variable).</param>
    public LakeStore(DataDirectory data, MetadataStore store, TimeProvider time, ILakeStorage? storage)
    {
        ArgumentNullException.ThrowIfNull(store);
        this.data = data;
        this.store = store;
        this.time = time;
        _storage = storage;
        Views = new LakeViews(store);
        Mirrors = new LakeMirrors(store);
        LogCommits = new LakeLogCommits(store);
    }

    public DataDirectory Data => data;

    /// <summary>The store that holds the manifest.</summary>
    public MetadataStore Metadata => store;

    /// <summary>Where the files are; refused with the variable to set when a cluster's shared manifest has no shared folder.</summary>
    public ILakeStorage Storage => _storage ?? throw new SluiceException(
        $"the lake's manifest is in the cluster's shared metadata store ({store.Shared}), so its Parquet files must be in a folder every worker sees: set {SharedMetadata.FolderVariable} (docs/SCALING.md, \"The lake\")");

    /// <summary>The folder of the lake's tables.</summary>
    public string Root => Storage.Root;

    /// <summary>
    /// Called when a commit's files are in place and its manifest transaction has not begun: tests stand another
    /// worker's sweep there, the moment a commit is most exposed to it.
    /// </summary>
    internal Action? Published { get; set; }

    /// <summary>Views kept as SQL and created in every query session (model views).</summary>
    public LakeViews Views { get; }

    /// <summary>Which tables are mirrors, and their keys (<see cref="LakeTable.MirrorKey"/>).</summary>
    public LakeMirrors Mirrors { get; }

    /// <summary>Which events of a cluster's shared log each lake sink committed (<see cref="LakeLogCommits"/>).</summary>
    public LakeLogCommits LogCommits { get; }

    /// <summary>A data folder's lake is its own <c>lake/</c>; a cluster's is <c>lake/</c> of the shared folder, which it must have.</summary>
    private static LocalLakeStorage? StorageFor(DataDirectory data, MetadataStore store) =>
        store.Shared is { } shared
            ? shared.Folder is { } folder ? new LocalLakeStorage(Path.Combine(folder, "lake")) : null
            : new LocalLakeStorage(data.LakeRoot);

    public void Register(LakeTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        Mirrors.EnsureCreated();
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        c.Execute(
            "INSERT INTO lake_tables(name, partition_key, partition_type, columns) VALUES ($n, $k, $t, $c) " +
            "ON CONFLICT(name) DO UPDATE SET partition_key = excluded.partition_key, partition_type = excluded.partition_type, columns = excluded.columns",
            tx, ("$n", table.QualifiedName), ("$k", table.PartitionKey), ("$t", table.PartitionType.Name()), ("$c", ColumnsJson(table)));
        Mirrors.Set(c, tx, table.QualifiedName, table.MirrorKey);
        tx.Commit();
    }

    private static string ColumnsJson(LakeTable table) =>
        JsonSerializer.Serialize(table.Columns.Select(f => new[] { f.Name, f.TypeText(), f.Required ? "required" : "optional" }));

    public IReadOnlyList<LakeTable> Tables()
    {
        var mirrors = Mirrors.All();
        using var c = store.Connect();
        using var cmd = c.Command("SELECT name, partition_key, partition_type, columns FROM lake_tables ORDER BY name");
        using var r = cmd.ExecuteReader();
        var tables = new List<LakeTable>();
        while (r.Read())
        {
            var name = r.GetString(0);
            var dot = name.IndexOf('.', StringComparison.Ordinal);
            var partitionType = FieldTypes.Parse(r.GetString(2));
            var columns = JsonSerializer.Deserialize<string[][]>(r.GetString(3))!
                .Select(a => FieldSpecs.FromTypeText(a[0], a[1], a[2] == "required"))
                .ToList();
            tables.Add(new LakeTable(name[..dot], name[(dot + 1)..], r.GetString(1), partitionType, columns) { MirrorKey = mirrors.GetValueOrDefault(name) });
        }

        return tables;
    }

    public LakeStager BeginStaging(string label)
    {
        var id = string.Create(CultureInfo.InvariantCulture, $"{time.GetUtcNow():yyyyMMddHHmmssfff}-{Guid.NewGuid():N}")[..30];
        return new LakeStager(Path.Combine(Storage.StagingRoot, $"{Sanitize(label)}-{id}"), id);
    }

    /// <summary>
    /// Publishes the staged files. <paramref name="alsoInTransaction"/> records the input's checkpoint atomically with them.
    /// <paramref name="replacePartitions"/> makes the staged files replace what those partitions held (a job recomputing days).
    /// Returns the highest manifest id written (0 when nothing was staged).
    /// </summary>
    /// <param name="replaceFiles">
    /// Files (absolute paths) the staged files replace, one by one (compaction): if any of them is no longer current, the
    /// commit throws <see cref="LakeConflictException"/> and changes nothing (the moved files become orphans, swept later).
    /// </param>
    public long Commit(LakeStager stager, Action<DbConnection, DbTransaction>? alsoInTransaction = null, IReadOnlyCollection<(LakeTable Table, string Partition)>? replacePartitions = null, IReadOnlyCollection<string>? replaceFiles = null)
    {
        ArgumentNullException.ThrowIfNull(stager);
        var root = Root;
        var moved = new List<(StagedFile File, string Final)>();
        foreach (var f in stager.Files)
        {
            var folder = f.Table.IsPartitioned
                ? Path.Combine(root, f.Table.Zone, f.Table.Name, $"{f.Table.PartitionKey}={f.PartitionValue}")
                : Path.Combine(root, f.Table.Zone, f.Table.Name);
            moved.Add((f, Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"{stager.TransactionId}-{moved.Count:D5}.parquet"))));
        }

        if (moved.Count > 0)
        {
            Reserve(moved.Select(m => m.Final), stager.TransactionId);
        }

        Storage.Publish(moved.Select(m => (m.File.Path, m.Final)).ToList());
        Published?.Invoke();
        Core.CrashPoint.Reach("lake.renamed");
        var now = time.GetUtcNow();
        long last = 0;
        using (var c = store.Connect())
        using (var tx = c.BeginWrite())
        {
            if (replacePartitions is not null)
            {
                foreach (var (table, partition) in replacePartitions)
                {
                    using var old = c.Command(
                        "SELECT path FROM lake_files WHERE table_name = $t AND partition_value = $p AND removed_at IS NULL", tx,
                        ("$t", table.QualifiedName), ("$p", partition));
                    var paths = new List<string>();
                    using (var r = old.ExecuteReader())
                    {
                        while (r.Read()) { paths.Add(r.GetString(0)); }
                    }

                    foreach (var path in paths)
                    {
                        c.Execute("UPDATE lake_files SET removed_at = $n WHERE path = $p", tx, ("$n", now.Iso()), ("$p", path));
                        MarkGarbage(c, tx, path, now);
                    }
                }
            }

            foreach (var path in replaceFiles ?? [])
            {
                var relative = Relative(path);
                if (c.Execute("UPDATE lake_files SET removed_at = $n WHERE path = $p AND removed_at IS NULL", tx, ("$n", now.Iso()), ("$p", relative)) != 1)
                {
                    throw new LakeConflictException($"lake file '{relative}' was replaced or removed meanwhile; nothing was committed");
                }

                MarkGarbage(c, tx, relative, now);
            }

            foreach (var (f, final) in moved)
            {
                last = Math.Max(last, c.Scalar<long>(
                    "INSERT INTO lake_files(table_name, partition_key, partition_value, path, rows, origin, committed_at) VALUES ($t, $k, $v, $p, $r, $o, $n) RETURNING id",
                    tx, ("$t", f.Table.QualifiedName), ("$k", f.Table.PartitionKey), ("$v", f.PartitionValue), ("$p", Relative(final)),
                    ("$r", f.Rows), ("$o", stager.TransactionId), ("$n", now.Iso())));
                // The reservation is this commit's own: a sweep that took it (it judged the commit dead) may have deleted the file.
                if (c.Execute("DELETE FROM lake_reserved WHERE path = $p AND origin = $o", tx, ("$p", Relative(final)), ("$o", stager.TransactionId)) != 1)
                {
                    throw new LakeConflictException($"lake file '{Relative(final)}' lost its reservation to the orphan sweep before its commit; nothing was committed");
                }
            }

            alsoInTransaction?.Invoke(c, tx);
            tx.Commit();
        }

        stager.Dispose();
        return last;
    }

    /// <summary>The absolute paths of a table's current files, optionally only those of some partitions.</summary>
    public IReadOnlyList<string> Files(string qualifiedName, IReadOnlyCollection<string>? partitions = null)
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT path, partition_value FROM lake_files WHERE table_name = $t AND removed_at IS NULL ORDER BY id", null, ("$t", qualifiedName));
        using var r = cmd.ExecuteReader();
        var set = partitions is null ? null : new HashSet<string>(partitions, StringComparer.Ordinal);
        var list = new List<string>();
        while (r.Read())
        {
            if (set is null || set.Contains(r.GetString(1)))
            {
                list.Add(Path.Combine(Root, r.GetString(0)));
            }
        }

        return list;
    }

    /// <summary>The current files of a table with their manifest ids, up to <paramref name="maxId"/> when given.</summary>
    public IReadOnlyList<LakeFileEntry> FileEntries(string qualifiedName, long? maxId = null)
    {
        using var c = store.Connect();
        using var cmd = c.Command(
            "SELECT id, path, partition_value, rows FROM lake_files WHERE table_name = $t AND removed_at IS NULL AND id <= $m ORDER BY id",
            null, ("$t", qualifiedName), ("$m", maxId ?? long.MaxValue));
        using var r = cmd.ExecuteReader();
        var list = new List<LakeFileEntry>();
        while (r.Read())
        {
            list.Add(new LakeFileEntry(r.GetInt64(0), Path.Combine(Root, r.GetString(1)), r.GetString(2), r.GetInt64(3)));
        }

        return list;
    }

    public LakeTable? Table(string qualifiedName) =>
        Tables().FirstOrDefault(t => string.Equals(t.QualifiedName, qualifiedName, StringComparison.Ordinal));

    /// <summary>Partitions of a table that received files with a manifest id above <paramref name="afterId"/>, and the highest id seen.</summary>
    public (IReadOnlyList<string> Partitions, long MaxId) PartitionsChangedSince(string qualifiedName, long afterId)
    {
        using var c = store.Connect();
        using var cmd = c.Command(
            "SELECT DISTINCT partition_value FROM lake_files WHERE table_name = $t AND id > $id ORDER BY 1", null, ("$t", qualifiedName), ("$id", afterId));
        var list = new List<string>();
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) { list.Add(r.GetString(0)); }
        }

        return (list, MaxManifestId(c));
    }

    /// <summary>When the table last received files (its newest manifest commit, replaced files included), or null when it never did.</summary>
    public DateTimeOffset? LastCommitAt(string qualifiedName)
    {
        using var c = store.Connect();
        return c.Scalar<string>("SELECT max(committed_at) FROM lake_files WHERE table_name = $t", null, ("$t", qualifiedName)) is { } at
            ? SqliteExtensions.ParseIso(at) : null;
    }

    public long MaxManifestId()
    {
        using var c = store.Connect();
        return MaxManifestId(c);
    }

    public IReadOnlyList<string> Partitions(string qualifiedName)
    {
        using var c = store.Connect();
        using var cmd = c.Command("SELECT DISTINCT partition_value FROM lake_files WHERE table_name = $t AND removed_at IS NULL ORDER BY 1", null, ("$t", qualifiedName));
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) { list.Add(r.GetString(0)); }
        return list;
    }

    /// <summary>
    /// Removes what provably is this lake's own garbage, and nothing else: staging folders, files a commit reserved but
    /// never committed (a crash between rename and commit), both older than the grace period so a concurrent writer's
    /// unit in progress is safe, and replaced files whose grace has passed. A Parquet file the manifest does not know
    /// and no reservation names is never deleted (see <see cref="UnknownFiles"/>): it may be data whose manifest was lost.
    /// </summary>
    public void SweepOrphans()
    {
        if (_storage is null)
        {
            return; // a shared manifest without a shared folder: no file of it can be here to sweep
        }

        // One sweeper at a time across a cluster's workers; the others skip this round.
        using var maintenance = LakeMaintenance.TryEnter(store);
        if (maintenance is null)
        {
            return;
        }

        var now = time.GetUtcNow();
        if (Directory.Exists(_storage.StagingRoot))
        {
            foreach (var staged in Directory.EnumerateDirectories(_storage.StagingRoot))
            {
                if (now - LastWrite(staged) > GarbageGrace) { _storage.Delete(staged); }
            }
        }

        using var c = store.Connect();
        foreach (var path in Paths(c, "SELECT path FROM lake_reserved WHERE reserved_at <= $n AND path NOT IN (SELECT path FROM lake_files)", ("$n", (now - GarbageGrace).Iso())))
        {
            // The reservation is taken first, in its own statement: a commit still under way then finds it gone and
            // fails (LakeConflictException) instead of naming a file deleted here; one that committed first keeps it.
            if (c.Execute("UPDATE lake_reserved SET origin = 'swept' WHERE path = $p AND reserved_at <= $n AND path NOT IN (SELECT path FROM lake_files)", null,
                    ("$p", path), ("$n", (now - GarbageGrace).Iso())) != 1)
            {
                continue;
            }

            _storage.Delete(Path.Combine(_storage.Root, path));
            c.Execute("DELETE FROM lake_reserved WHERE path = $p AND origin = 'swept'", null, ("$p", path));
        }

        foreach (var path in Paths(c, "SELECT path FROM lake_garbage WHERE delete_after <= $n", ("$n", now.Iso())))
        {
            _storage.Delete(Path.Combine(_storage.Root, path));
            c.Execute("DELETE FROM lake_garbage WHERE path = $p", null, ("$p", path));
            c.Execute("DELETE FROM lake_files WHERE path = $p AND removed_at IS NOT NULL", null, ("$p", path));
        }
    }

    /// <summary>
    /// When a staging folder was last written: its newest file's time, since a folder's own time does not change while a
    /// large file streams into it (another worker's unit in progress must not look abandoned).
    /// </summary>
    private static DateTimeOffset LastWrite(string folder)
    {
        try
        {
            var newest = Directory.GetLastWriteTimeUtc(folder);
            foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
            {
                var at = File.GetLastWriteTimeUtc(file);
                if (at > newest) { newest = at; }
            }

            return new DateTimeOffset(newest, TimeSpan.Zero);
        }
        catch (IOException)
        {
            // Its unit committed (or gave up) and removed it while we looked: nothing of it is left to sweep.
            return DateTimeOffset.MaxValue;
        }
    }

    /// <summary>
    /// Parquet files under the lake that neither the manifest nor a reservation names, older than the grace period
    /// (someone else's files, or data whose manifest rows were lost). The sweep leaves them; the host reports them.
    /// </summary>
    public IReadOnlyList<string> UnknownFiles()
    {
        var now = time.GetUtcNow();
        using var c = store.Connect();
        var known = new HashSet<string>(Paths(c, "SELECT path FROM lake_files UNION SELECT path FROM lake_reserved"), StringComparer.Ordinal);
        var unknown = new List<string>();
        if (_storage is null || !Directory.Exists(_storage.Root))
        {
            return [];
        }

        foreach (var zone in Directory.EnumerateDirectories(_storage.Root))
        {
            if (string.Equals(zone, _storage.StagingRoot, StringComparison.Ordinal))
            {
                continue;
            }

            unknown.AddRange(Directory.EnumerateFiles(zone, "*.parquet", SearchOption.AllDirectories)
                .Where(file => !known.Contains(Relative(file)) && now - File.GetLastWriteTimeUtc(file) > GarbageGrace));
        }

        return unknown;
    }

    /// <summary>Files replaced and waiting for their grace to pass (relative to the lake): never current again.</summary>
    public IReadOnlySet<string> Garbage()
    {
        using var c = store.Connect();
        return new HashSet<string>(Paths(c, "SELECT path FROM lake_garbage"), StringComparer.Ordinal);
    }

    /// <summary>
    /// Makes the recovered tables the lake's whole manifest (<c>sluice recover</c>), in one transaction: current files,
    /// tables and reservations are replaced; replaced files waiting for their grace stay garbage.
    /// </summary>
    public void ReplaceManifest(IReadOnlyList<RecoveredTable> tables)
    {
        ArgumentNullException.ThrowIfNull(tables);
        var now = time.GetUtcNow().Iso();
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        c.Execute("DELETE FROM lake_files WHERE removed_at IS NULL", tx);
        c.Execute("DELETE FROM lake_tables", tx);
        c.Execute("DELETE FROM lake_reserved", tx);
        foreach (var recovered in tables.Where(t => t.Files.Count > 0))
        {
            var table = recovered.Table;
            c.Execute(
                "INSERT INTO lake_tables(name, partition_key, partition_type, columns) VALUES ($n, $k, $t, $c)",
                tx, ("$n", table.QualifiedName), ("$k", table.PartitionKey), ("$t", table.PartitionType.Name()), ("$c", ColumnsJson(table)));
            foreach (var file in recovered.Files)
            {
                c.Execute(
                    "INSERT INTO lake_files(table_name, partition_key, partition_value, path, rows, origin, committed_at) VALUES ($t, $k, $v, $p, $r, 'recovered', $n)",
                    tx, ("$t", table.QualifiedName), ("$k", table.PartitionKey), ("$v", file.Partition), ("$p", Relative(file.Path)), ("$r", file.Rows), ("$n", now));
            }
        }

        tx.Commit();
    }

    /// <summary>Records the names a commit is about to rename into the lake, durably and before the renames.</summary>
    private void Reserve(IEnumerable<string> finals, string origin)
    {
        using var c = store.Connect();
        using var tx = c.BeginTransaction();
        var at = time.GetUtcNow().Iso();
        foreach (var final in finals)
        {
            c.Execute(
                "INSERT INTO lake_reserved(path, origin, reserved_at) VALUES ($p, $o, $n) ON CONFLICT(path) DO UPDATE SET origin = excluded.origin, reserved_at = excluded.reserved_at",
                tx, ("$p", Relative(final)), ("$o", origin), ("$n", at));
        }

        tx.Commit();
    }

    private static List<string> Paths(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(sql, null, parameters);
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) { list.Add(r.GetString(0)); }
        return list;
    }

    private static long MaxManifestId(DbConnection c) => c.Scalar<long?>("SELECT max(id) FROM lake_files") ?? 0;

    private string Relative(string path) => Path.GetRelativePath(Root, path);

    private static void MarkGarbage(DbConnection c, DbTransaction tx, string path, DateTimeOffset now) =>
        c.Execute(
            "INSERT INTO lake_garbage(path, delete_after) VALUES ($p, $d) ON CONFLICT(path) DO UPDATE SET delete_after = excluded.delete_after",
            tx, ("$p", path), ("$d", (now + GarbageGrace).Iso()));

    private static string Sanitize(string label) => string.Concat(label.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_'));

}
