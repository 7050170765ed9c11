using Sluice.Core.Metadata;

namespace Sluice.Connectors.Files;

/// <summary>A file handed to a files pipeline's sinks: its position in the stream, its name in processing/, its ledger key.</summary>
internal sealed record FileUnit(long Seq, string FileName, string LedgerKey);

/// <summary>
/// The files a files pipeline with sinks has handed on and not yet finished (table <c>file_units</c>, component
/// migration <c>files.units</c>), in the metadata store: a data folder's SQLite, or a cluster's shared Postgres schema.
/// A file keeps its position across restarts: a sink that committed it before a crash has that position as its
/// checkpoint and is not given the file again, while the others are. A row is finished once every sink committed the
/// file and it moved to processed/. Positions are numbered per <c>worker</c>, the scope of the sinks' checkpoints
/// (empty in a single process; a cluster worker's id, whose sinks keep checkpoints of their own): a worker that takes
/// over a dead worker's file closes the dead worker's row (<see cref="TakeOver"/>) and hands the file on again at a
/// position of its own.
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
        // Positions per worker (a cluster's workers each number their own); a single process's rows keep the empty one.
        """
        CREATE TABLE file_units_scoped (
            recipe TEXT NOT NULL, pipeline TEXT NOT NULL, worker TEXT NOT NULL, seq INTEGER NOT NULL, file_name TEXT NOT NULL,
            ledger_key TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (recipe, pipeline, worker, seq));
        INSERT INTO file_units_scoped(recipe, pipeline, worker, seq, file_name, ledger_key, done)
            SELECT recipe, pipeline, '', seq, file_name, ledger_key, done FROM file_units;
        DROP TABLE file_units;
        ALTER TABLE file_units_scoped RENAME TO file_units;
        """,
    ];

    private readonly MetadataStore _store;
    private readonly string _recipe;
    private readonly string _pipeline;
    private readonly string _worker;

    /// <param name="worker">The scope of this process's positions: empty in a single process, the worker's id in a cluster.</param>
    public FileUnits(MetadataStore store, string recipe, string pipeline, string worker = "")
    {
        _store = store;
        _recipe = recipe;
        _pipeline = pipeline;
        _worker = worker;
        store.Migrate("files.units", Migrations);
    }

    /// <summary>This worker's files handed on and not finished, in the order they were handed on.</summary>
    public IReadOnlyList<FileUnit> Open()
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT seq, file_name, ledger_key FROM file_units WHERE recipe = $r AND pipeline = $p AND worker = $w AND done = 0 ORDER BY seq", null,
            ("$r", _recipe), ("$p", _pipeline), ("$w", _worker));
        using var reader = cmd.ExecuteReader();
        var units = new List<FileUnit>();
        while (reader.Read()) { units.Add(new FileUnit(reader.GetInt64(0), reader.GetString(1), reader.GetString(2))); }
        return units;
    }

    /// <summary>The highest position this worker ever handed out (0: none).</summary>
    public long Last()
    {
        using var c = _store.Connect();
        return c.Scalar<long?>("SELECT max(seq) FROM file_units WHERE recipe = $r AND pipeline = $p AND worker = $w", null,
            ("$r", _recipe), ("$p", _pipeline), ("$w", _worker)) ?? 0;
    }

    /// <summary>
    /// The names (in processing/) of the files with this ledger key that any worker handed on and has not finished: the
    /// same content dropped again meanwhile, if such a file is still there.
    /// </summary>
    public IReadOnlyList<string> InFlight(string ledgerKey)
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT file_name FROM file_units WHERE recipe = $r AND pipeline = $p AND done = 0 AND ledger_key = $k", null,
            ("$r", _recipe), ("$p", _pipeline), ("$k", ledgerKey));
        using var reader = cmd.ExecuteReader();
        var names = new List<string>();
        while (reader.Read()) { names.Add(reader.GetString(0)); }
        return names;
    }

    public void Add(FileUnit unit)
    {
        ArgumentNullException.ThrowIfNull(unit);
        using var c = _store.Connect();
        c.Execute("INSERT INTO file_units(recipe, pipeline, worker, seq, file_name, ledger_key) VALUES ($r, $p, $w, $s, $f, $k)", null,
            ("$r", _recipe), ("$p", _pipeline), ("$w", _worker), ("$s", unit.Seq), ("$f", unit.FileName), ("$k", unit.LedgerKey));
    }

    /// <summary>Marks a file finished; finished rows below it go (the newest stays: it holds the last position handed out).</summary>
    public void Done(long seq)
    {
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        c.Execute("UPDATE file_units SET done = 1 WHERE recipe = $r AND pipeline = $p AND worker = $w AND seq = $s", tx,
            ("$r", _recipe), ("$p", _pipeline), ("$w", _worker), ("$s", seq));
        c.Execute("DELETE FROM file_units WHERE recipe = $r AND pipeline = $p AND worker = $w AND done = 1 AND seq < (SELECT max(seq) FROM file_units WHERE recipe = $r AND pipeline = $p AND worker = $w)", tx,
            ("$r", _recipe), ("$p", _pipeline), ("$w", _worker));
        tx.Commit();
    }

    /// <summary>
    /// Closes every unfinished row of the file <paramref name="fileName"/>, of whichever worker (one whose claim on it ran
    /// out, or this worker's before a restart), for the caller to hand the file on again at a position of its own. The
    /// rows are marked finished, not deleted: the newest of a worker holds the last position it handed out, which it
    /// must never hand out again. Returns how many were closed.
    /// </summary>
    public int TakeOver(string fileName)
    {
        using var c = _store.Connect();
        return c.Execute("UPDATE file_units SET done = 1 WHERE recipe = $r AND pipeline = $p AND file_name = $f AND done = 0", null,
            ("$r", _recipe), ("$p", _pipeline), ("$f", fileName));
    }
}
