using System.Text;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Files;

/// <summary>A record rejected under <see cref="InvalidRowPolicy.QuarantineRows"/>, waiting to go to the dead-letter store with the file's commit.</summary>
internal sealed record QuarantinedRecord(RecordIssue Issue, string Payload);

/// <summary>
/// The state of reading one file: the rows being built, the counts, and what went wrong. Readers feed it record by
/// record; it decides when reading should stop (a file-level error, or enough bad records to fail the file).
/// </summary>
internal sealed class IngestRun
{
    /// <summary>How many record problems a rejected file's <c>.error.json</c> lists.</summary>
    public const int MaxListedIssues = 100;

    /// <summary>A quarantined record's payload is cut beyond this size; the position still leads to the original.</summary>
    public const int MaxPayloadBytes = 1 << 20;

    private readonly List<RecordIssue> _issues = [];
    private readonly List<QuarantinedRecord> _quarantined = [];

    // Record numbers of the rows in the builder, for the _row lineage column; emptied at every flush, so bounded by BatchRows.
    private readonly List<long> _rowRecords = [];

    public IngestRun(FileType type, string fileName, int batchRows, DateTime? loadedAt = null)
    {
        Shape = new RecordShape(type);
        FileName = fileName;
        BatchRows = batchRows;
        LoadedAt = loadedAt ?? DateTime.UtcNow;
        Builder = new ColumnBatchBuilder(Shape.Schema, Math.Min(batchRows, 8192));
        Table = type.LakeTable().Schema;
    }

    /// <summary>The <c>_loaded_at</c> of every row of this file (UTC).</summary>
    public DateTime LoadedAt { get; }

    /// <summary>The schema of the batches handed to the writer: the fields, and the lineage columns when the type has them.</summary>
    public TableSchema Table { get; }

    public RecordShape Shape { get; }

    public FileType Type => Shape.Type;

    public string FileName { get; }

    public int BatchRows { get; }

    public ColumnBatchBuilder Builder { get; }

    public long Records { get; private set; }

    public long Rows { get; private set; }

    public long BadRows { get; private set; }

    public IReadOnlyList<RecordIssue> Issues => _issues;

    public IReadOnlyList<QuarantinedRecord> Quarantined => _quarantined;

    /// <summary>A problem with the file as a whole (malformed JSON, wrong root key, missing header): nothing of it may land.</summary>
    public RecordIssue? Fatal { get; private set; }

    public bool Rejected => Fatal is not null || (BadRows > 0 && Type.OnInvalid == InvalidRowPolicy.RejectFile) || TooManyBad;

    public bool TooManyBad => Type.OnInvalid == InvalidRowPolicy.QuarantineRows && BadRows > Type.MaxBadRows;

    /// <summary>Reading on is pointless once the file is certain to fail and enough problems are listed to act on.</summary>
    public bool StopReading => Fatal is not null || TooManyBad || (Type.OnInvalid == InvalidRowPolicy.RejectFile && _issues.Count >= MaxListedIssues);

    public bool BatchFull => Builder.Count >= BatchRows;

    public long NextRecord() => ++Records;

    /// <summary>Hands out the rows built so far, with their lineage columns when the type has them.</summary>
    public ColumnBatch Flush()
    {
        var batch = Builder.Flush();
        if (!Type.Lineage)
        {
            return batch;
        }

        var files = new string?[batch.Count];
        var rows = new long?[batch.Count];
        var loaded = new DateTime?[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            files[i] = FileName;
            rows[i] = _rowRecords[i];
            loaded[i] = LoadedAt;
        }

        _rowRecords.Clear();
        return new ColumnBatch(Table, [.. batch.Columns, files, rows, loaded], batch.Count);
    }

    public void Accept(FieldProblem? problem, long record, long line, ReadOnlySpan<byte> raw)
    {
        if (problem is null)
        {
            Rows++;
            if (Type.Lineage) { _rowRecords.Add(record); }
            return;
        }

        BadRows++;
        var issue = new RecordIssue(record, line, problem.Value.Field, problem.Value.Message);
        if (_issues.Count < MaxListedIssues)
        {
            _issues.Add(issue);
        }

        if (Type.OnInvalid == InvalidRowPolicy.QuarantineRows && !TooManyBad)
        {
            var payload = raw.Length > MaxPayloadBytes ? raw[..MaxPayloadBytes] : raw;
            _quarantined.Add(new QuarantinedRecord(issue, Encoding.UTF8.GetString(payload)));
        }
    }

    public void Accept(FieldProblem? problem, long record, long line, string raw)
    {
        if (problem is null)
        {
            Accept(null, record, line, ReadOnlySpan<byte>.Empty);
            return;
        }

        Accept(problem, record, line, Encoding.UTF8.GetBytes(raw));
    }

    public void Fail(long line, long record, string message, string? field = null) =>
        Fatal ??= new RecordIssue(record, line, field, message);

    /// <summary>The one-line reason a rejected file failed.</summary>
    public string Reason()
    {
        if (Fatal is not null)
        {
            return Fatal.Message;
        }

        var first = _issues.FirstOrDefault();
        var what = TooManyBad
            ? $"{BadRows} invalid records, more than max_bad_rows ({Type.MaxBadRows})"
            : $"{BadRows}{(StopReading ? "+" : "")} invalid record{(BadRows == 1 ? "" : "s")} (policy reject_file)";
        return first is null ? what : $"{what}; first: {first.Position(FileName)}: {first.Message}";
    }
}
