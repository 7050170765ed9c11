using System.Globalization;
using DuckDB.NET.Data;
using Sluice.Core.Schema;

namespace Sluice.Lake;

/// <summary>A table found under <c>lake/</c> by <see cref="LakeRecovery"/>: the files it can vouch for, and those it could not read.</summary>
public sealed record RecoveredTable(LakeTable Table, IReadOnlyList<LakeFileEntry> Files, IReadOnlyList<string> Unreadable)
{
    public long Rows => Files.Sum(f => f.Rows);

    public int Partitions => Files.Select(f => f.Partition).Distinct(StringComparer.Ordinal).Count();
}

/// <summary>
/// Rebuilds the lake manifest from the files (<c>sluice recover</c>), for a data folder whose metadata store was lost:
/// a table per <c>lake/&lt;zone&gt;/&lt;table&gt;/</c> folder, a partition per Hive folder (<c>key=value</c>), rows from each
/// file's Parquet footer and columns from the Parquet schema. What cannot be read is reported and left where it is.
/// </summary>
public sealed class LakeRecovery(LakeStore lake)
{
    /// <summary>Files per DuckDB metadata query: keeps the statement small whatever the lake's size.</summary>
    private const int FilesPerQuery = 500;

    /// <summary>The table folders under the lake (never the staging area), in name order.</summary>
    public IReadOnlyList<(string Zone, string Table)> TableFolders()
    {
        var root = lake.Data.LakeRoot;
        if (!Directory.Exists(root))
        {
            return [];
        }

        return Directory.EnumerateDirectories(root)
            .Where(z => !Hidden(z) && !string.Equals(z, lake.Data.StagingRoot, StringComparison.Ordinal))
            .SelectMany(z => Directory.EnumerateDirectories(z).Where(t => !Hidden(t)).Select(t => (Zone: Path.GetFileName(z), Table: Path.GetFileName(t))))
            .OrderBy(t => t.Zone, StringComparer.Ordinal).ThenBy(t => t.Table, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Reads one table folder; <paramref name="skip"/> holds files (relative to the lake) that must not come back (replaced files awaiting deletion).</summary>
    public RecoveredTable? Scan(string zone, string table, IReadOnlySet<string> skip)
    {
        ArgumentNullException.ThrowIfNull(skip);
        var folder = Path.Combine(lake.Data.LakeRoot, zone, table);
        var unreadable = new List<string>();
        var partitions = Directory.EnumerateDirectories(folder).Where(d => Path.GetFileName(d).Contains('=', StringComparison.Ordinal)).ToList();
        var keys = partitions.Select(d => Path.GetFileName(d).Split('=', 2)[0]).Distinct(StringComparer.Ordinal).ToList();
        if (keys.Count > 1)
        {
            return new RecoveredTable(LakeTable.Unpartitioned(zone, table, []), [], [$"{folder}: partition folders with different keys ({string.Join(", ", keys)}); left out"]);
        }

        var found = new List<(string Path, string Partition)>();
        var direct = Directory.EnumerateFiles(folder, "*.parquet").ToList();
        if (keys.Count == 1)
        {
            unreadable.AddRange(direct.Select(f => $"{f}: beside the partition folders; left out"));
            found.AddRange(partitions.SelectMany(d => Directory.EnumerateFiles(d, "*.parquet").Select(f => (f, Path.GetFileName(d).Split('=', 2)[1]))));
        }
        else
        {
            found.AddRange(direct.Select(f => (f, "")));
        }

        found = found.Where(f => !skip.Contains(Path.GetRelativePath(lake.Data.LakeRoot, f.Path)))
            .OrderBy(f => Path.GetFileName(f.Path), StringComparer.Ordinal).ThenBy(f => f.Path, StringComparer.Ordinal).ToList();
        if (found.Count == 0)
        {
            return unreadable.Count == 0 ? null : new RecoveredTable(LakeTable.Unpartitioned(zone, table, []), [], unreadable);
        }

        using var db = DuckDb.OpenMemory(Path.Combine(lake.Data.Root, "tmp", "duckdb"));
        var rows = RowCounts(db, found.Select(f => f.Path).ToList(), unreadable);
        var files = found.Where(f => rows.ContainsKey(f.Path)).Select(f => new LakeFileEntry(0, f.Path, f.Partition, rows[f.Path])).ToList();
        var columns = files.Count == 0 ? [] : Columns(db, files.Select(f => f.Path).ToList());
        var key = keys.Count == 1 ? keys[0] : "";
        var lakeTable = new LakeTable(zone, table, key, key.Length == 0 ? FieldType.String : PartitionType(files.Select(f => f.Partition)), columns);
        return new RecoveredTable(lakeTable, files, unreadable);
    }

    /// <summary>Rows per file from the footers; a file DuckDB cannot read as Parquet (torn, not Parquet) is reported instead.</summary>
    private static Dictionary<string, long> RowCounts(DuckDBConnection db, List<string> paths, List<string> unreadable)
    {
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var chunk in paths.Chunk(FilesPerQuery))
        {
            try
            {
                Read(db, chunk, rows);
            }
            catch (DuckDBException)
            {
                foreach (var path in chunk)
                {
                    try
                    {
                        Read(db, [path], rows);
                    }
                    catch (DuckDBException e)
                    {
                        unreadable.Add($"{path}: not readable as Parquet ({FirstLine(e.Message)}); left out");
                    }
                }
            }
        }

        return rows;

        static void Read(DuckDBConnection db, IReadOnlyList<string> files, Dictionary<string, long> into)
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"SELECT file_name, num_rows FROM parquet_file_metadata([{string.Join(", ", files.Select(LakeQueryEngine.Literal))}])";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                into[r.GetString(0)] = Convert.ToInt64(r.GetValue(1), CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>The union of the files' columns (every one optional: what was required lived in the lost store; writers register their tables again at start).</summary>
    private static List<FieldSpec> Columns(DuckDBConnection db, List<string> paths)
    {
        var columns = new List<FieldSpec>();
        foreach (var chunk in paths.Chunk(FilesPerQuery))
        {
            using var cmd = db.CreateCommand();
            cmd.CommandText = $"DESCRIBE SELECT * FROM read_parquet([{string.Join(", ", chunk.Select(LakeQueryEngine.Literal))}], hive_partitioning = false, union_by_name = true)";
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                var name = r.GetString(0);
                if (!columns.Exists(c => string.Equals(c.Name, name, StringComparison.Ordinal)))
                {
                    columns.Add(new FieldSpec(name, FieldTypeOf(r.GetString(1)), false));
                }
            }
        }

        return columns;
    }

    /// <summary>The field type DuckDB's type name reads back as; anything Sluice does not write itself is read as text.</summary>
    internal static FieldType FieldTypeOf(string duckDbType)
    {
        var type = duckDbType.ToUpperInvariant();
        return type switch
        {
            "BIGINT" or "INTEGER" or "SMALLINT" or "TINYINT" or "UBIGINT" or "UINTEGER" or "USMALLINT" or "UTINYINT" or "HUGEINT" => FieldType.Integer,
            "DOUBLE" or "FLOAT" or "REAL" => FieldType.Double,
            "BOOLEAN" => FieldType.Boolean,
            "DATE" => FieldType.Date,
            _ when type.StartsWith("DECIMAL", StringComparison.Ordinal) => FieldType.Double,
            _ when type.StartsWith("TIMESTAMP", StringComparison.Ordinal) => FieldType.Timestamp,
            _ => FieldType.String,
        };
    }

    /// <summary>Dates when every partition value is one (the lake's day partitions), integers when every one is, else text.</summary>
    private static FieldType PartitionType(IEnumerable<string> values)
    {
        var list = values.Distinct(StringComparer.Ordinal).ToList();
        if (list.TrueForAll(v => DateOnly.TryParseExact(v, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _)))
        {
            return FieldType.Date;
        }

        return list.TrueForAll(v => long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)) ? FieldType.Integer : FieldType.String;
    }

    private static bool Hidden(string path) => Path.GetFileName(path) is var name && (name.StartsWith('.') || name.StartsWith('_'));

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}
