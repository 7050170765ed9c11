using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Sluice.Core;
using Sluice.Core.IO;
using Sluice.Core.Metadata;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>
/// The Parquet lake and its manifest. A file is part of a table only once a row in <c>lake_files</c> names it, and that
/// row is written in the same SQLite transaction as the checkpoint of the input it came from. So a unit of work becomes
/// visible all at once (queries read the manifest, not a glob), and a crash before the commit leaves only unnamed files,
/// which <see cref="SweepOrphans"/> removes.
/// </summary>
public sealed class LakeStore(DataDirectory data, MetadataStore store, TimeProvider time)
{
    /// <summary>How long a replaced file stays on disk, so that queries that already listed it can finish.</summary>
    public static readonly TimeSpan GarbageGrace = TimeSpan.FromMinutes(5);

    public DataDirectory Data => data;

    /// <summary>Views kept as SQL and created in every query session (model views).</summary>
    public LakeViews Views { get; } = new(store);

    public void Register(LakeTable table)
    {
        using var c = store.Open();
        c.Execute(
            "INSERT INTO lake_tables(name, partition_key, partition_type, columns) VALUES ($n, $k, $t, $c) " +
            "ON CONFLICT(name) DO UPDATE SET partition_key = excluded.partition_key, partition_type = excluded.partition_type, columns = excluded.columns",
            null, ("$n", table.QualifiedName), ("$k", table.PartitionKey), ("$t", table.PartitionType.Name()),
            ("$c", JsonSerializer.Serialize(table.Columns.Select(f => new[] { f.Name, f.Type.Name(), f.Required ? "required" : "optional" }))));
    }

    public IReadOnlyList<LakeTable> Tables()
    {
        using var c = store.Open();
        using var cmd = c.Command("SELECT name, partition_key, partition_type, columns FROM lake_tables ORDER BY name");
        using var r = cmd.ExecuteReader();
        var tables = new List<LakeTable>();
        while (r.Read())
        {
            var name = r.GetString(0);
            var dot = name.IndexOf('.', StringComparison.Ordinal);
            var partitionType = FieldTypes.Parse(r.GetString(2));
            var columns = JsonSerializer.Deserialize<string[][]>(r.GetString(3))!
                .Select(a => new FieldSpec(a[0], FieldTypes.Parse(a[1]), a[2] == "required"))
                .ToList();
            tables.Add(new LakeTable(name[..dot], name[(dot + 1)..], r.GetString(1), partitionType, columns));
        }

        return tables;
    }

    public LakeStager BeginStaging(string label)
    {
        var id = string.Create(CultureInfo.InvariantCulture, $"{time.GetUtcNow():yyyyMMddHHmmssfff}-{Guid.NewGuid():N}")[..30];
        return new LakeStager(Path.Combine(data.StagingRoot, $"{Sanitize(label)}-{id}"), id);
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
    public long Commit(LakeStager stager, Action<SqliteConnection, SqliteTransaction>? alsoInTransaction = null, IReadOnlyCollection<(LakeTable Table, string Partition)>? replacePartitions = null, IReadOnlyCollection<string>? replaceFiles = null)
    {
        ArgumentNullException.ThrowIfNull(stager);
        var moved = new List<(StagedFile File, string Final)>();
        foreach (var f in stager.Files)
        {
            var folder = f.Table.IsPartitioned
                ? Path.Combine(data.LakeRoot, f.Table.Zone, f.Table.Name, $"{f.Table.PartitionKey}={f.PartitionValue}")
                : Path.Combine(data.LakeRoot, f.Table.Zone, f.Table.Name);
            Directory.CreateDirectory(folder);
            var final = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"{stager.TransactionId}-{moved.Count:D5}.parquet"));
            File.Move(f.Path, final);
            moved.Add((f, final));
        }

        // The renames must be durable before the manifest names the files; one directory fsync per partition folder.
        foreach (var folder in moved.Select(m => Path.GetDirectoryName(m.Final)!).Distinct(StringComparer.Ordinal))
        {
            FileSync.Directory(folder);
        }

        var now = time.GetUtcNow();
        long last = 0;
        using (var c = store.Open())
        using (var tx = c.BeginTransaction())
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
                        c.Execute("INSERT OR REPLACE INTO lake_garbage(path, delete_after) VALUES ($p, $d)", tx, ("$p", path), ("$d", (now + GarbageGrace).Iso()));
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

                c.Execute("INSERT OR REPLACE INTO lake_garbage(path, delete_after) VALUES ($p, $d)", tx, ("$p", relative), ("$d", (now + GarbageGrace).Iso()));
            }

            foreach (var (f, final) in moved)
            {
                c.Execute(
                    "INSERT INTO lake_files(table_name, partition_key, partition_value, path, rows, origin, committed_at) VALUES ($t, $k, $v, $p, $r, $o, $n)",
                    tx, ("$t", f.Table.QualifiedName), ("$k", f.Table.PartitionKey), ("$v", f.PartitionValue), ("$p", Relative(final)),
                    ("$r", f.Rows), ("$o", stager.TransactionId), ("$n", now.Iso()));
            }

            last = moved.Count > 0 ? c.Scalar<long>("SELECT last_insert_rowid()", tx) : 0;
            alsoInTransaction?.Invoke(c, tx);
            tx.Commit();
        }

        stager.Dispose();
        return last;
    }

    /// <summary>The absolute paths of a table's current files, optionally only those of some partitions.</summary>
    public IReadOnlyList<string> Files(string qualifiedName, IReadOnlyCollection<string>? partitions = null)
    {
        using var c = store.Open();
        using var cmd = c.Command("SELECT path, partition_value FROM lake_files WHERE table_name = $t AND removed_at IS NULL ORDER BY id", null, ("$t", qualifiedName));
        using var r = cmd.ExecuteReader();
        var set = partitions is null ? null : new HashSet<string>(partitions, StringComparer.Ordinal);
        var list = new List<string>();
        while (r.Read())
        {
            if (set is null || set.Contains(r.GetString(1)))
            {
                list.Add(Path.Combine(data.LakeRoot, r.GetString(0)));
            }
        }

        return list;
    }

    /// <summary>The current files of a table with their manifest ids, up to <paramref name="maxId"/> when given.</summary>
    public IReadOnlyList<LakeFileEntry> FileEntries(string qualifiedName, long? maxId = null)
    {
        using var c = store.Open();
        using var cmd = c.Command(
            "SELECT id, path, partition_value, rows FROM lake_files WHERE table_name = $t AND removed_at IS NULL AND ($m IS NULL OR id <= $m) ORDER BY id",
            null, ("$t", qualifiedName), ("$m", maxId));
        using var r = cmd.ExecuteReader();
        var list = new List<LakeFileEntry>();
        while (r.Read())
        {
            list.Add(new LakeFileEntry(r.GetInt64(0), Path.Combine(data.LakeRoot, r.GetString(1)), r.GetString(2), r.GetInt64(3)));
        }

        return list;
    }

    public LakeTable? Table(string qualifiedName) =>
        Tables().FirstOrDefault(t => string.Equals(t.QualifiedName, qualifiedName, StringComparison.Ordinal));

    /// <summary>Partitions of a table that received files with a manifest id above <paramref name="afterId"/>, and the highest id seen.</summary>
    public (IReadOnlyList<string> Partitions, long MaxId) PartitionsChangedSince(string qualifiedName, long afterId)
    {
        using var c = store.Open();
        using var cmd = c.Command(
            "SELECT DISTINCT partition_value FROM lake_files WHERE table_name = $t AND id > $id ORDER BY 1", null, ("$t", qualifiedName), ("$id", afterId));
        var list = new List<string>();
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) { list.Add(r.GetString(0)); }
        }

        return (list, MaxManifestId(c));
    }

    public long MaxManifestId()
    {
        using var c = store.Open();
        return MaxManifestId(c);
    }

    public IReadOnlyList<string> Partitions(string qualifiedName)
    {
        using var c = store.Open();
        using var cmd = c.Command("SELECT DISTINCT partition_value FROM lake_files WHERE table_name = $t AND removed_at IS NULL ORDER BY 1", null, ("$t", qualifiedName));
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) { list.Add(r.GetString(0)); }
        return list;
    }

    /// <summary>
    /// Removes what a crash left behind: staging folders, lake files no manifest row names (older than the grace period,
    /// so a concurrent writer's files between move and commit are safe), and replaced files whose grace has passed.
    /// </summary>
    public void SweepOrphans()
    {
        var now = time.GetUtcNow();
        var named = new HashSet<string>(StringComparer.Ordinal);
        using var c = store.Open();
        using (var cmd = c.Command("SELECT path FROM lake_files WHERE removed_at IS NULL"))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) { named.Add(Path.Combine(data.LakeRoot, r.GetString(0))); }
        }

        foreach (var zone in Directory.EnumerateDirectories(data.LakeRoot))
        {
            if (Path.GetFileName(zone) == "_staging")
            {
                foreach (var staged in Directory.EnumerateDirectories(zone))
                {
                    if (now - Directory.GetLastWriteTimeUtc(staged) > GarbageGrace) { TryDelete(staged); }
                }

                continue;
            }

            foreach (var file in Directory.EnumerateFiles(zone, "*.parquet", SearchOption.AllDirectories))
            {
                if (!named.Contains(file) && now - File.GetLastWriteTimeUtc(file) > GarbageGrace)
                {
                    TryDelete(file);
                }
            }
        }

        var due = new List<string>();
        using (var cmd = c.Command("SELECT path FROM lake_garbage WHERE delete_after <= $n", null, ("$n", now.Iso())))
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read()) { due.Add(r.GetString(0)); }
        }

        foreach (var path in due)
        {
            TryDelete(Path.Combine(data.LakeRoot, path));
            c.Execute("DELETE FROM lake_garbage WHERE path = $p", null, ("$p", path));
            c.Execute("DELETE FROM lake_files WHERE path = $p AND removed_at IS NOT NULL", null, ("$p", path));
        }
    }

    private static long MaxManifestId(SqliteConnection c) => c.Scalar<long?>("SELECT max(id) FROM lake_files") ?? 0;

    private string Relative(string path) => Path.GetRelativePath(data.LakeRoot, path);

    private static string Sanitize(string label) => string.Concat(label.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_'));

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path)) { Directory.Delete(path, true); }
            else if (File.Exists(path)) { File.Delete(path); }
        }
        catch (IOException)
        {
            // Another sweep got there first, or a reader still has it open on a system that cares; the next sweep retries.
        }
    }
}
