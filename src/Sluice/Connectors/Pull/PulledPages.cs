using System.Text.Json;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;

namespace Sluice.Connectors.Pull;

/// <summary>
/// A page handed on: its position, the watermark after it, its records, and the number of its last record (records
/// are numbered on through the pull's pages, for a sink that skips replays by them: <see cref="PullCursor.Log"/>).
/// </summary>
public sealed record PulledPage(long Position, PullWatermark Watermark, IReadOnlyList<PulledRecord> Records, long LastRow = 0);

/// <summary>
/// Where a pull goes on from: the position, watermark and last record number every sink has, the pages handed on after
/// them, and the log its rows are numbered in. The log is the pull's source with the cursor's generation, made when
/// the cursor is (a cursor deleted to pull everything again starts a new one), so rows pulled again after a reset are
/// never taken for rows a sink committed before it.
/// </summary>
public sealed record PullCursor(long Position, PullWatermark Watermark, IReadOnlyList<PulledPage> Pages, long LastRow, string Log);

/// <summary>
/// The pages a pull has handed to its sinks and not every sink has committed (table <c>pull_pages</c>), and the
/// watermark every sink has (table <c>pull_state</c>); component migration <c>pull.pages</c>. A page is recorded before
/// it is handed on, so after a crash the same rows come again at the same position whatever the source system did
/// meanwhile: each sink skips what it committed and takes the rest, and nothing is pulled twice. The record is bounded
/// by what the pipeline's queues hold (a few pages); a page is forgotten once every sink committed it. Both tables
/// are in the cluster's shared store there, so the worker that takes a pull's lease over goes on from this cursor.
/// </summary>
public sealed class PulledPages
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE pull_pages (source TEXT NOT NULL, position INTEGER NOT NULL, watermark TEXT NOT NULL, records TEXT NOT NULL, PRIMARY KEY (source, position));
        CREATE TABLE pull_state (source TEXT PRIMARY KEY, position INTEGER NOT NULL, watermark TEXT NOT NULL);
        """,
        """
        ALTER TABLE pull_pages ADD COLUMN last_row INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE pull_state ADD COLUMN last_row INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE pull_state ADD COLUMN generation TEXT NOT NULL DEFAULT '';
        """,
    ];

    private readonly MetadataStore _store;
    private readonly string _source;

    public PulledPages(MetadataStore store, string source)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _source = source;
        store.Migrate("pull.pages", Migrations);
    }

    /// <summary>The cursor every sink has, and the pages handed on after <paramref name="after"/> (in order).</summary>
    public PullCursor Load(long? after)
    {
        if (after is { } a) { Acknowledge(a); }
        using var c = _store.Connect();
        // The cursor's generation is made with its row (a reset deletes the row): the first load of a pull makes both.
        c.Execute("INSERT INTO pull_state(source, position, watermark, last_row, generation) VALUES ($s, 0, $w, 0, $g) ON CONFLICT(source) DO NOTHING", null,
            ("$s", _source), ("$w", PullWatermark.Empty.ToJson()), ("$g", Guid.NewGuid().ToString("N")));
        c.Execute("UPDATE pull_state SET generation = $g WHERE source = $s AND generation = ''", null, ("$s", _source), ("$g", Guid.NewGuid().ToString("N")));
        long position = 0, lastRow = 0;
        var watermark = PullWatermark.Empty;
        var generation = "";
        using (var state = c.Command("SELECT position, watermark, last_row, generation FROM pull_state WHERE source = $s", null, ("$s", _source)))
        using (var reader = state.ExecuteReader())
        {
            if (reader.Read()) { (position, watermark, lastRow, generation) = (reader.GetInt64(0), PullWatermark.Parse(reader.GetString(1)), reader.GetInt64(2), reader.GetString(3)); }
        }

        var pages = new List<PulledPage>();
        using (var cmd = c.Command("SELECT position, watermark, records, last_row FROM pull_pages WHERE source = $s ORDER BY position", null, ("$s", _source)))
        using (var reader = cmd.ExecuteReader())
        {
            while (reader.Read())
            {
                var records = JsonSerializer.Deserialize<List<StoredRecord>>(reader.GetString(2))!.Select(r => r.ToRecord()).ToList();
                pages.Add(new PulledPage(reader.GetInt64(0), PullWatermark.Parse(reader.GetString(1)), records, reader.GetInt64(3)));
            }
        }

        return new PullCursor(position, watermark, pages, lastRow, $"{_source}@{generation}");
    }

    /// <summary>
    /// Records a page, and the dead letters of its refused records, in one transaction, before it is handed on. On a
    /// worker of a cluster <paramref name="fence"/> checks the pull's lease in that transaction: a holder that lost it
    /// writes nothing (<see cref="PullFencedException"/>).
    /// </summary>
    public void Record(PulledPage page, DeadLetterStore letters, string letterSource, IReadOnlyList<(PulledRecord Record, string Reason)> refused, IPullFence? fence = null)
    {
        ArgumentNullException.ThrowIfNull(page);
        ArgumentNullException.ThrowIfNull(letters);
        ArgumentNullException.ThrowIfNull(refused);
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        fence?.Check(c, tx);
        c.Execute("INSERT INTO pull_pages(source, position, watermark, records, last_row) VALUES ($s, $p, $w, $r, $l)", tx,
            ("$s", _source), ("$p", page.Position), ("$w", page.Watermark.ToJson()), ("$r", JsonSerializer.Serialize(page.Records.Select(StoredRecord.Of).ToList())), ("$l", page.LastRow));
        foreach (var (record, reason) in refused)
        {
            var position = PullWatermark.Describe(record.Id, record.Stamp);
            letters.Add(c, tx, letterSource, position, reason, System.Text.Encoding.UTF8.GetString(record.Json.Span), $"{letterSource}:{position}");
        }

        tx.Commit();
    }

    /// <summary>Every sink committed up to <paramref name="position"/>: its watermark and last row become the ones to start from, and the pages up to it go.</summary>
    public void Acknowledge(long position)
    {
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        c.Execute(
            "INSERT INTO pull_state(source, position, watermark, last_row) SELECT source, position, watermark, last_row FROM pull_pages WHERE source = $s AND position <= $p ORDER BY position DESC LIMIT 1 " +
            "ON CONFLICT(source) DO UPDATE SET position = excluded.position, watermark = excluded.watermark, last_row = excluded.last_row", tx, ("$s", _source), ("$p", position));
        c.Execute("DELETE FROM pull_pages WHERE source = $s AND position <= $p", tx, ("$s", _source), ("$p", position));
        tx.Commit();
    }

    private sealed record StoredRecord(string Id, long Ticks, string Json)
    {
        public static StoredRecord Of(PulledRecord r) => new(r.Id, r.Stamp.Ticks, System.Text.Encoding.UTF8.GetString(r.Json.Span));

        public PulledRecord ToRecord() => new(Id, new DateTime(Ticks, DateTimeKind.Utc), System.Text.Encoding.UTF8.GetBytes(Json));
    }
}
