using Sluice.Core.Metadata;

namespace Sluice.Connectors.Files;

/// <summary>A file handed to a files pipeline's sinks: its position in the stream, its name in processing/, its ledger key.</summary>
internal sealed record FileUnit(long Seq, string FileName, string LedgerKey);

/// <summary>
/// The files a files pipeline with sinks has handed on and not yet finished (table <c>file_units</c>, component
/// migration <c>files.units</c>). A file keeps its position across restarts: a sink that committed it before a crash
/// has that position as its checkpoint and is not given the file again, while the others are. A row is finished once
/// every sink committed the file and it moved to processed/.
/// </summary>
internal sealed class FileUnits
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE file_units (
            recipe TEXT NOT NULL, pipeline TEXT NOT NULL, seq INTEGER NOT NULL, file_name TEXT NOT NULL,
            ledger_key TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (recipe, pipeline, seq));
        """,
    ];

    private readonly MetadataStore _store;
    private readonly string _recipe;
    private readonly string _pipeline;

    public FileUnits(MetadataStore store, string recipe, string pipeline)
    {
        _store = store;
        _recipe = recipe;
        _pipeline = pipeline;
        store.Migrate("files.units", Migrations);
    }

    /// <summary>The files handed on and not finished, in the order they were handed on.</summary>
    public IReadOnlyList<FileUnit> Open()
    {
        using var c = _store.Open();
        using var cmd = c.Command("SELECT seq, file_name, ledger_key FROM file_units WHERE recipe = $r AND pipeline = $p AND done = 0 ORDER BY seq", null, ("$r", _recipe), ("$p", _pipeline));
        using var reader = cmd.ExecuteReader();
        var units = new List<FileUnit>();
        while (reader.Read()) { units.Add(new FileUnit(reader.GetInt64(0), reader.GetString(1), reader.GetString(2))); }
        return units;
    }

    /// <summary>The highest position ever handed out (0: none).</summary>
    public long Last()
    {
        using var c = _store.Open();
        return c.Scalar<long?>("SELECT max(seq) FROM file_units WHERE recipe = $r AND pipeline = $p", null, ("$r", _recipe), ("$p", _pipeline)) ?? 0;
    }

    /// <summary>Whether content with this ledger key is handed on and not finished (the same file dropped again meanwhile).</summary>
    public bool InFlight(string ledgerKey)
    {
        using var c = _store.Open();
        return c.Scalar<long>("SELECT count(*) FROM file_units WHERE recipe = $r AND pipeline = $p AND done = 0 AND ledger_key = $k", null, ("$r", _recipe), ("$p", _pipeline), ("$k", ledgerKey)) > 0;
    }

    public void Add(FileUnit unit)
    {
        using var c = _store.Open();
        c.Execute("INSERT INTO file_units(recipe, pipeline, seq, file_name, ledger_key) VALUES ($r, $p, $s, $f, $k)", null,
            ("$r", _recipe), ("$p", _pipeline), ("$s", unit.Seq), ("$f", unit.FileName), ("$k", unit.LedgerKey));
    }

    /// <summary>Marks a file finished; finished rows below it go (the newest stays: it holds the last position handed out).</summary>
    public void Done(long seq)
    {
        using var c = _store.Open();
        using var tx = c.BeginTransaction();
        c.Execute("UPDATE file_units SET done = 1 WHERE recipe = $r AND pipeline = $p AND seq = $s", tx, ("$r", _recipe), ("$p", _pipeline), ("$s", seq));
        c.Execute("DELETE FROM file_units WHERE recipe = $r AND pipeline = $p AND done = 1 AND seq < (SELECT max(seq) FROM file_units WHERE recipe = $r AND pipeline = $p)", tx,
            ("$r", _recipe), ("$p", _pipeline));
        tx.Commit();
    }
}
