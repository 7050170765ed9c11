using System.Data.Common;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.Files;

/// <summary>One file's line in the ledger: which content landed, under which name and type, with how many rows.</summary>
public sealed record LedgerEntry(string Recipe, string ContentHash, string FileName, string FileType, long Rows, long RejectedRows);

/// <summary>
/// The ledger of ingested file content (table <c>ingested_files</c>): the same content dropped again is recognised by its
/// SHA-256 and lands nothing. An entry is written in the transaction that lands the file's rows.
/// </summary>
public sealed class FileLedger(MetadataStore store, TimeProvider time)
{
    private const string ContainsSql = "SELECT count(*) FROM ingested_files WHERE recipe = $r AND content_hash = $h";

    public bool Contains(string recipe, string hash)
    {
        using var c = store.Connect();
        return Contains(c, null, recipe, hash);
    }

    public static bool Contains(DbConnection c, DbTransaction? tx, string recipe, string hash) =>
        c.Scalar<long>(ContainsSql, tx, ("$r", recipe), ("$h", hash)) > 0;

    public void Record(DbConnection c, DbTransaction tx, LedgerEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        c.Execute(
            "INSERT INTO ingested_files(content_hash, recipe, file_name, file_type, rows, rejected_rows, committed_at) VALUES ($h, $r, $f, $t, $n, $b, $at)",
            tx, ("$h", entry.ContentHash), ("$r", entry.Recipe), ("$f", entry.FileName), ("$t", entry.FileType), ("$n", entry.Rows),
            ("$b", entry.RejectedRows), ("$at", time.GetUtcNow().Iso()));
    }
}
