using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.Internal;
using System.Text;
using NpgsqlTypes;
using Sluice.Core.DeadLetters;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>Rows decoded from the stream; <see cref="CommitEnd"/> is set on the piece that ends a transaction (its end LSN).</summary>
/// <see cref="HandOver"/> marks the last piece the reader hands over at once (see <see cref="PostgresCdcOptions.BatchLinger"/>).
/// <see cref="Snapshots"/> names the snapshots its snapshot rows were read by (null: none).
internal sealed record ChangePiece(IReadOnlyList<ColumnBatch> Tables, long? CommitEnd, int Rows, DateTimeOffset? CommitTime = null, bool HandOver = false, IReadOnlyList<Core.Pipeline.SnapshotRows>? Snapshots = null);

/// <summary>
/// The existing rows of tables added to the recipe after the first start, read in a snapshot whose consistent point is
/// <see cref="ConsistentPoint"/>: transactions committed before it are in the rows, those after it are not. The reader
/// places them in the stream right there (<see cref="Placed"/> is told the position they got).
/// </summary>
internal sealed record AddedTablesSnapshot(long ConsistentPoint, IReadOnlyList<ColumnBatch> Tables, int Rows, Action<long> Placed);

/// <summary>
/// Decodes pgoutput messages into pieces of at most <see cref="PieceRows"/> rows, written to a bounded channel (the
/// reader waits when the batcher is behind, and the server waits for the reader: back-pressure reaches the WAL sender).
/// Each message is read whole from its XLogData and decoded in one sync pass (<see cref="PgOutputMessage"/>). Every
/// row carries the change envelope (docs/CDC.md): updates and deletes their old image as far as the replica identity
/// gives it, an unchanged TOASTed value is taken from the old image or marked, a key change is a delete and an insert,
/// a TRUNCATE is a row.
/// </summary>
internal sealed class PgChangeReader(PostgresCdcOptions options, IReadOnlyList<CdcTable> tables, string deadLetterSource, DeadLetterStore deadLetters, ILogger log, TimeProvider time)
{
    private long _lastMessageTicks;

    public const int PieceRows = 512;

    private readonly Dictionary<(string Schema, string Name), CdcTable> _tables = tables.ToDictionary(t => (t.Schema, t.Name));
    private readonly Dictionary<uint, PgTableShape?> _relations = [];
    private readonly List<ChangePiece> _pieces = [];
    private readonly PgTuple _old = new();
    private readonly PgTuple _new = new();
    private readonly PgDomains _domains = new(options.Connection);
    private volatile bool _inTransaction;
    private volatile bool _pausing;
    private PgTableShape? _current;
    private byte[] _buffer = new byte[4096];
    private long _piecesWritten;
    private long _unwritten;
    private PgOutputBegin _begin;
    private long _seq;
    private long _lastEnd;
    private int _rows;
    private int _rowInTransaction;

    /// <summary>
    /// Nothing read is left in the reader: no transaction begun and not ended, no piece decoded and not yet handed over,
    /// no message taken during a linger's sleep and not yet decoded.
    /// The idle checks need both: the server's position counts what the reader holds.
    /// </summary>
    public bool Idle => !_pausing && !_inTransaction && Interlocked.Read(ref _unwritten) == 0;

    public long PiecesWritten => Interlocked.Read(ref _piecesWritten);

    /// <summary>When the server last sent a change of any table of the slot's database (null: nothing yet on this connection).</summary>
    public DateTimeOffset? LastMessageAt => Interlocked.Read(ref _lastMessageTicks) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    /// <summary>Rows of added tables waiting for their place in the stream (set before <see cref="RunAsync"/>).</summary>
    public AddedTablesSnapshot? Added { get; set; }

    /// <summary>The incremental snapshot chunk between its watermarks, if any (set by <see cref="PgIncrementalSnapshot"/>).</summary>
    public PgChunkWindow? Window
    {
        get => Volatile.Read(ref _window);
        set => Volatile.Write(ref _window, value);
    }

    private PgChunkWindow? _window;

    /// <summary>The pieces decoded and not yet written (unit tests read them after <see cref="Handle"/>).</summary>
    internal List<ChangePiece> Pending => _pieces;

    public async Task RunAsync(LogicalReplicationConnection connection, PgOutputReplicationSlot slot, NpgsqlLogSequenceNumber start, ChannelWriter<ChangePiece> output, CancellationToken ct)
    {
        _lastEnd = unchecked((long)(ulong)start);
        // messages: the source's own heartbeats (PgSlotMonitor) arrive as logical messages (each moves the connection's
        // received position, which the idle status loop confirms), and the marker transaction that places an added table's snapshot (PgSlotAdmin.EmitMarkerAsync) must reach us even when nothing else changes.
        KeyValuePair<string, string?>[] plugin = [new("proto_version", "1"), new("publication_names", $"\"{options.Publication}\""), new("messages", "true")];
        await _domains.LoadAsync([], ct).ConfigureAwait(false);
        // The reader's own token for the replication read: whatever ends this loop (a stop, a full channel closed under
        // it, a fault) first ends a read still in flight, then disposes the enumerator (see FinishReadAsync).
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var messages = connection.StartLogicalReplication(slot, reading.Token, start, plugin).GetAsyncEnumerator(reading.Token);
        var next = default(ValueTask<bool>);
        var inFlight = false;
        try
        {
            var held = new List<ChangePiece>();
            var heldRows = 0;
            DateTimeOffset? deadline = null;
            while (true)
            {
                next = messages.MoveNextAsync();
                inFlight = true;
                if (!next.IsCompleted && deadline is { } due)
                {
                    // Keeping up with the server, which sends each message as it decodes it: sleep out the linger (inside a
                    // transaction too) and take everything sent meanwhile in one read, then hand over what is held. Each
                    // socket read wakes two threads (the socket's and a pool worker); on a virtual machine those wake-ups
                    // were most of Sluice's CPU at 1,000 changes/s: now it is a few per batch, not a few per message.
                    var wait = due - time.GetUtcNow();
                    // Past the linger in the middle of a transaction: the reader caught up with the server while it sends the
                    // transaction one message at a time; a short pause lets the rest of it arrive for one read.
                    if (wait <= TimeSpan.Zero && _inTransaction) { wait = options.BatchLinger / 5; }
                    if (wait > TimeSpan.Zero)
                    {
                        // Npgsql takes the next message (and moves the received position) while this sleeps, before it is
                        // decoded: the idle checks must not confirm that position meanwhile.
                        _pausing = true;
                        await Task.Delay(wait, time, ct).ConfigureAwait(false);
                    }

                    if (!next.IsCompleted)
                    {
                        _pausing = false;
                    }

                    if (!next.IsCompleted && !_inTransaction)
                    {
                        await HandOverAsync(held, output, ct).ConfigureAwait(false);
                        (heldRows, deadline) = (0, null);
                    }
                }

                // A ValueTask is awaited once: from here on the read is the await's, not FinishReadAsync's.
                inFlight = false;
                if (!await next.ConfigureAwait(false)) { break; }
                var message = messages.Current;
                var length = await ReadAsync(message.Data).ConfigureAwait(false);
                Interlocked.Exchange(ref _lastMessageTicks, time.GetUtcNow().UtcTicks);
                if (length > 0 && _buffer[0] == (byte)'R' && new PgOutputMessage(_buffer.AsSpan(0, length)).Relation() is var relation && _domains.Unknown(relation))
                {
                    // A type created after the start (a domain perhaps): the catalog says what it is built on.
                    await _domains.LoadAsync(relation.Columns.Select(c => c.TypeOid), ct).ConfigureAwait(false);
                }

                Handle(_buffer.AsSpan(0, length));
                _pausing = false;
                // The linger runs from the first message after a hand-over: a transaction's messages come one by one.
                deadline ??= time.GetUtcNow() + options.BatchLinger;
                if (_pieces.Count == 0) { continue; }
                foreach (var piece in _pieces)
                {
                    held.Add(piece);
                    heldRows += piece.Rows;
                }

                _pieces.Clear();
                // A batch's worth goes at once (mid-transaction too: the batcher joins it while the rest is decoded). Past the
                // linger, what the server already sent is read first and goes with it (above, when the reader would wait),
                // unless a backlog keeps it reading for another linger: then it goes at a commit.
                if (heldRows >= options.BatchRows || (!_inTransaction && time.GetUtcNow() >= deadline + options.BatchLinger))
                {
                    await HandOverAsync(held, output, ct).ConfigureAwait(false);
                    (heldRows, deadline) = (0, null);
                }
            }

            await HandOverAsync(held, output, ct).ConfigureAwait(false);
        }
        finally
        {
            await FinishReadAsync(messages, inFlight ? next : null, reading).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Ends the replication read for good. Npgsql's replication enumerator is a compiler-built async iterator: disposing
    /// it while a MoveNextAsync is pending throws, and the connection's DisposeAsync then calls MoveNextAsync a second
    /// time over the pending one; when both finish, the iterator completes twice and throws on a thread-pool thread,
    /// which kills the process ("An attempt was made to transition a task to a final state when it had already
    /// completed"). So a read still in flight (the linger's sleep or a hand-over was interrupted) is cancelled and
    /// awaited to its end first (Npgsql cancels it at the server, or breaks the connection after its cancellation
    /// timeout), and only then is the enumerator disposed: the connection finds nothing streaming.
    /// </summary>
    private static async Task FinishReadAsync(IAsyncEnumerator<XLogDataMessage> messages, ValueTask<bool>? inFlight, CancellationTokenSource reading)
    {
        if (inFlight is { } read)
        {
            await reading.CancelAsync().ConfigureAwait(false);
            try
            {
                await read.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The read's own end (cancelled, or the fault that ends the stream anyway): what matters is that it is over.
            }
        }

        await messages.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The held pieces to the batcher, the last marked as the end of a hand-over (the batcher emits there at a commit).</summary>
    private async Task HandOverAsync(List<ChangePiece> held, ChannelWriter<ChangePiece> output, CancellationToken ct)
    {
        for (var i = 0; i < held.Count; i++)
        {
            await output.WriteAsync(i == held.Count - 1 ? held[i] with { HandOver = true } : held[i], ct).ConfigureAwait(false);
            Interlocked.Increment(ref _piecesWritten);
            Interlocked.Decrement(ref _unwritten);
        }

        held.Clear();
    }

    /// <summary>
    /// The message's bytes into a reused buffer (grown for a large one, shrunk back after). No token: with one, Npgsql
    /// registers a cancellation per read; this only waits for the rest of a message the server is already sending, and
    /// a stop takes effect between messages.
    /// </summary>
    private async Task<int> ReadAsync(Stream data)
    {
        var length = checked((int)data.Length);
        if (length > _buffer.Length) { _buffer = new byte[length]; }
        else if (_buffer.Length > 1 << 20 && length <= 4096) { _buffer = new byte[4096]; }
        var read = 0;
        while (read < length)
        {
            var n = await data.ReadAsync(_buffer.AsMemory(read, length - read), CancellationToken.None).ConfigureAwait(false);
            if (n == 0) { throw new EndOfStreamException($"replication message ended after {read} of {length} bytes"); }
            read += n;
        }

        return length;
    }

    /// <summary>One message: first, an added tables' snapshot when this transaction is the first after its consistent point.</summary>
    internal void Handle(ReadOnlySpan<byte> data)
    {
        if (Added is { } added && data.Length > 8 && data[0] == (byte)'B' && PgOutputMessage.BeginFinalLsn(data) >= added.ConsistentPoint)
        {
            // Between the last transaction (which ended at _lastEnd) and this one (which ends past its final LSN, at or
            // after the consistent point): a position of its own, above every sink's checkpoint and below what follows.
            var position = Math.Max(_lastEnd + 1, added.ConsistentPoint);
            // The rows' _lsn is just below the temporary slot's consistent point (PgSnapshotReader.ReadAddedAsync).
            var name = PgSnapshotNames.Added(added.ConsistentPoint);
            AddPiece(new ChangePiece(added.Tables, position, added.Rows,
                Snapshots: added.Tables.Select(t => t.Schema.Table).Distinct(StringComparer.Ordinal).Select(t => new Core.Pipeline.SnapshotRows(t, added.ConsistentPoint - 1, name)).ToList()));
            _lastEnd = position;
            Added = null;
            added.Placed(position);
        }

        Decode(data);
    }

    private void Decode(ReadOnlySpan<byte> data)
    {
        var message = new PgOutputMessage(data);
        switch (message.Kind)
        {
            case 'B':
                _begin = PgOutputMessage.Begin(data);
                _rowInTransaction = 0;
                _seq = 0;
                _inTransaction = true;
                break;

            case 'R':
                var relation = message.Relation();
                if (_relations.TryGetValue(relation.Id, out var old) && old is not null && old.Builder.Count > 0)
                {
                    // The table's columns changed mid-stream: rows so far keep the old shape.
                    Cut(null);
                }

                _relations[relation.Id] = Shape(relation, old);
                break;

            case 'I' when ShapeOf(message.UInt32()) is { } shape:
                message.Skip(1); // 'N': the new tuple
                message.Tuple(_new);
                Observe(shape, data, _new);
                AddRow(shape, data, ChangeEnvelope.Insert, _new, null, null, false);
                break;

            case 'U' when ShapeOf(message.UInt32()) is { } shape:
                var kind = (char)message.Byte();
                PgTuple? before = null;
                if (kind is 'K' or 'O')
                {
                    // The old key (DEFAULT: only when the key changed or is stored out of line) or the whole old row (FULL).
                    message.Tuple(_old);
                    before = _old;
                    message.Skip(1); // 'N'
                }

                message.Tuple(_new);
                Observe(shape, data, _new, before);
                if (before is not null) { Observe(shape, data, before); }
                if (shape.Table.OnUpdate == ChangePolicy.Emit)
                {
                    if (before is not null && KeyChanged(shape, data, before, _new))
                    {
                        // As Debezium emits it: the old key is gone, the new one appears.
                        AddRow(shape, data, ChangeEnvelope.Delete, before, null, before, kind == 'K');
                        AddRow(shape, data, ChangeEnvelope.Insert, _new, before, null, false);
                    }
                    else
                    {
                        AddRow(shape, data, ChangeEnvelope.Update, _new, before, before, kind == 'K');
                    }
                }
                else if (shape.Table.OnUpdate == ChangePolicy.DeadLetter) { DeadLetter(shape, data, _new, "update"); }
                break;

            case 'D' when ShapeOf(message.UInt32()) is { } shape:
                var oldKind = (char)message.Byte(); // 'K' (the key) or 'O' (the whole old row)
                message.Tuple(_old);
                Observe(shape, data, _old);
                if (shape.Table.OnDelete == ChangePolicy.Emit) { AddRow(shape, data, ChangeEnvelope.Delete, _old, null, _old, oldKind == 'K'); }
                else if (shape.Table.OnDelete == ChangePolicy.DeadLetter) { DeadLetter(shape, data, _old, "delete"); }
                break;

            case 'T':
                foreach (var id in message.TruncatedRelations())
                {
                    if (ShapeOf(id) is { } truncated)
                    {
                        if (Window is { } w && w.IsFor(truncated.Table)) { w.Truncated(); }
                        PostgresLog.Truncate(log, truncated.Table.Display, PgCdcState.Lsn(_begin.FinalLsn));
                        AddTruncate(truncated);
                    }
                }

                break;

            case 'M':
                var logical = message.LogicalMessage();
                Watermark(logical);
                if (options.EmitHeartbeats && !logical.Transactional && logical.Prefix == PgSlotMonitor.HeartbeatPrefix) { AddHeartbeat(logical.Lsn, logical.Content); }
                break;

            case 'C':
                var end = PgOutputMessage.CommitEndLsn(data);
                Cut(end, PgOutputMessage.CommitTime(data));
                _lastEnd = end;
                _inTransaction = false;
                break;
        }

        _rowInTransaction++;
        if (_rows >= PieceRows)
        {
            Cut(null);
        }
    }

    private PgTableShape? ShapeOf(uint relation) => _relations.GetValueOrDefault(relation);

    /// <summary>
    /// Between a chunk's watermarks, a change of its table: the stream's version of that key wins over the chunk's,
    /// except for the values the change did not carry. <paramref name="updatedFrom"/>: for the new row of an update, its
    /// old image (null when the server sent none), to tell the values it marks unchanged (<see cref="AddRow"/>).
    /// </summary>
    private void Observe(PgTableShape shape, ReadOnlySpan<byte> data, PgTuple tuple, PgTuple? updatedFrom = null)
    {
        // From the moment the window is set, not only from its low watermark: a transaction whose commit was written
        // before the low watermark may still be invisible to the chunk's SELECT (its backend waits for the WAL flush
        // before it shows the commit), so its key must go to the stream too. Keys changed before the SELECT and
        // visible to it are dropped needlessly but safely: the stream carries a version at least as new.
        if (Window is not { } window || !window.IsFor(shape.Table) || shape.Key.Length == 0) { return; }
        var parts = new string?[shape.Key.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            var k = shape.Key[i];
            if (k >= tuple.Count || tuple.Kind(k) == PgValueKind.Unchanged) { return; }
            parts[i] = tuple.Kind(k) == PgValueKind.Text ? Encoding.UTF8.GetString(tuple.Text(data, k)) : null;
        }

        List<string>? unchanged = null;
        for (var i = 0; ReferenceEquals(tuple, _new) && i < Math.Min(tuple.Count, shape.ColumnCount); i++)
        {
            if (tuple.Kind(i) == PgValueKind.Unchanged && (updatedFrom is null || i >= updatedFrom.Count || updatedFrom.Kind(i) != PgValueKind.Text))
            {
                (unchanged ??= []).Add(shape.Names[i]);
            }
        }

        window.Changed(PgChunkWindow.KeyText(parts), unchanged);
    }

    /// <summary>
    /// An incremental snapshot's watermark (<see cref="PgIncrementalSnapshot"/>): the low one opens its chunk's window;
    /// at the high one the chunk enters the stream right here, at the message's position, as a piece of its own.
    /// Watermarks of another run (read again after a restart) match no window and are passed over, as heartbeats are.
    /// </summary>
    private void Watermark((bool Transactional, long Lsn, string Prefix, string Content) message)
    {
        if (message.Prefix != PgIncrementalSnapshot.WatermarkPrefix || Window is not { } window) { return; }
        if (message.Content == $"low {window.Token}")
        {
            window.Open();
            return;
        }

        if (message.Content != $"high {window.Token}") { return; }
        Window = null;
        if (!window.IsOpen || _inTransaction)
        {
            // Not seen opening (cannot happen in WAL order), or inside a transaction: read the chunk again.
            window.Placed(null);
            return;
        }

        var position = Math.Max(_lastEnd + 1, message.Lsn);
        if (window.Close(position, out var superseded) is not { } rows)
        {
            window.Placed(null);
            return;
        }

        AddPiece(new ChangePiece(rows.Count > 0 ? [rows] : [], position, rows.Count,
            Snapshots: rows.Count > 0 && window.Snapshot.Length > 0 ? [new Core.Pipeline.SnapshotRows(rows.Schema.Table, position, window.Snapshot)] : null));
        _lastEnd = position;
        window.Placed(new ChunkPlacement(position, rows.Count, superseded));
    }

    private PgTableShape? Shape(PgOutputRelation relation, PgTableShape? old)
    {
        if (!_tables.TryGetValue((relation.Namespace, relation.Name), out var table))
        {
            return null;
        }

        var columns = relation.Columns.Select(_domains.FieldOf).ToList();
        return old is not null && old.SameColumns(columns) ? old : new PgTableShape(table, columns);
    }

    /// <summary>Whether an update moved the row to another key (an unchanged TOASTed key column is the same key).</summary>
    private static bool KeyChanged(PgTableShape shape, ReadOnlySpan<byte> data, PgTuple old, PgTuple now)
    {
        foreach (var k in shape.Key)
        {
            if (k >= old.Count || k >= now.Count || now.Kind(k) == PgValueKind.Unchanged || old.Kind(k) == PgValueKind.Unchanged) { continue; }
            if (old.Kind(k) != now.Kind(k) || !old.Text(data, k).SequenceEqual(now.Text(data, k))) { return true; }
        }

        return false;
    }

    /// <summary>
    /// A row from <paramref name="tuple"/>. An unchanged TOASTed value is taken from <paramref name="old"/> when the server
    /// sent it there (REPLICA IDENTITY FULL), else the column stays NULL and is named in <c>_unchanged</c>. A value
    /// Sluice cannot read sends the whole row to the dead-letter store with the column and why, never a NULL in its place.
    /// </summary>
    private void AddRow(PgTableShape shape, ReadOnlySpan<byte> data, string op, PgTuple tuple, PgTuple? old, PgTuple? before, bool beforeIsKey)
    {
        Start(shape);
        List<string>? unchanged = null;
        var columns = Math.Min(tuple.Count, shape.ColumnCount);
        for (var i = 0; i < columns; i++)
        {
            var text = tuple.Kind(i) switch
            {
                PgValueKind.Text => tuple.Text(data, i),
                PgValueKind.Unchanged when old is not null && i < old.Count && old.Kind(i) == PgValueKind.Text => old.Text(data, i),
                _ => default,
            };
            if (tuple.Kind(i) == PgValueKind.Unchanged && (old is null || i >= old.Count || old.Kind(i) != PgValueKind.Text))
            {
                (unchanged ??= []).Add(shape.Names[i]);
            }
            else if (tuple.Kind(i) != PgValueKind.Null && !shape.Set(i, text))
            {
                var column = shape.Names[i];
                PostgresLog.BadValue(log, shape.Table.Display, PgCdcState.Lsn(_begin.FinalLsn), column, shape.Types[i].Name());
                shape.Builder.AbortRow();
                var what = op switch { ChangeEnvelope.Insert => "insert", ChangeEnvelope.Update => "update", _ => "delete" };
                // A key change is a delete and an insert of one change: the id tells their letters apart.
                DeadLetter(shape, data, tuple, what,
                    $"column {column}: '{Encoding.UTF8.GetString(text)}' is not a {shape.Types[i].Name()} value as Sluice reads Postgres's text (not applied downstream)", $":{what}");
                return;
            }
        }

        shape.Commit(op, _begin.FinalLsn, ++_seq, _begin.Xid, _begin.CommitTime,
            before is null ? null : BeforeJson(shape, data, before, beforeIsKey), unchanged is null ? null : ChangeEnvelope.UnchangedValue(unchanged));
        _rows++;
    }

    private void AddTruncate(PgTableShape shape)
    {
        Start(shape);
        shape.Commit(ChangeEnvelope.Truncate, _begin.FinalLsn, ++_seq, _begin.Xid, _begin.CommitTime, null, null);
        _rows++;
    }

    /// <summary>
    /// A heartbeat as one row of <see cref="PostgresCdcOptions.HeartbeatTable"/>, a piece of its own: a non-transactional
    /// message never falls inside a transaction's changes. Its position is just past the message's LSN, above the commit
    /// before it and below the one after, so sinks order and deduplicate it like any change; one read again after a
    /// restart from an earlier position is at or below what was delivered, and is skipped.
    /// </summary>
    private void AddHeartbeat(long lsn, string content)
    {
        var position = lsn + 1;
        if (position <= _lastEnd) { return; }
        var emitted = DateTimeOffset.TryParse(content, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at) ? at.UtcDateTime : (DateTime?)null;
        var batch = new ColumnBatch(
            new TableSchema(options.HeartbeatTable, HeartbeatFields),
            [new long?[] { position }, new DateTime?[] { emitted }, new string?[] { options.Slot }, new string?[] { options.Connection.Database }],
            1);
        AddPiece(new ChangePiece([batch], position, 1, emitted is { } e ? new DateTimeOffset(e) : null));
        _lastEnd = position;
    }

    internal static readonly FieldSpec[] HeartbeatFields =
    [
        new("_lsn", FieldType.Integer, true), new("_commit_ts", FieldType.Timestamp, false), new("slot", FieldType.String, true), new("database", FieldType.String, true),
    ];

    /// <summary>Rows keep their order across tables (a content update, then the events after it): a row of another table than the pending ones first ends the current piece.</summary>
    private void Start(PgTableShape shape)
    {
        if (_current is not null && !ReferenceEquals(_current, shape) && _current.Builder.Count > 0)
        {
            Cut(null);
        }

        _current = shape;
    }

    /// <summary>
    /// The old image as a JSON object of Postgres text values (null for NULL): the whole row under REPLICA IDENTITY
    /// FULL, the key columns under DEFAULT (a key tuple's other columns are not sent, so they are left out, not null).
    /// </summary>
    private static string BeforeJson(PgTableShape shape, ReadOnlySpan<byte> data, PgTuple before, bool keyOnly)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            for (var i = 0; i < Math.Min(before.Count, shape.ColumnCount); i++)
            {
                var kind = before.Kind(i);
                if (kind == PgValueKind.Unchanged || (keyOnly && kind == PgValueKind.Null)) { continue; }
                json.WritePropertyName(shape.Names[i]);
                if (kind == PgValueKind.Text) { json.WriteStringValue(before.Text(data, i)); }
                else { json.WriteNullValue(); }
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private void DeadLetter(PgTableShape shape, ReadOnlySpan<byte> data, PgTuple tuple, string what) =>
        DeadLetter(shape, data, tuple, what, $"the table's on_{what} policy is dead_letter (not applied downstream)", "");

    private void DeadLetter(PgTableShape shape, ReadOnlySpan<byte> data, PgTuple tuple, string what, string why, string idSuffix)
    {
        var row = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 0; i < tuple.Count; i++)
        {
            var name = i < shape.ColumnCount ? shape.Names[i] : $"column{i}";
            row[name] = tuple.Kind(i) switch { PgValueKind.Text => Encoding.UTF8.GetString(tuple.Text(data, i)), PgValueKind.Unchanged => "(unchanged toasted value)", _ => null };
        }

        var lsn = _begin.FinalLsn;
        var position = $"{shape.Table.Display} {what} in the transaction committed at {PgCdcState.Lsn(lsn)}, change {_rowInTransaction}";
        deadLetters.Add(deadLetterSource, position, $"{what} of {shape.Table.BatchName}: {why}",
            JsonSerializer.Serialize(row), $"{deadLetterSource}:{options.Slot}:{lsn}:{_rowInTransaction}{idSuffix}");
    }

    /// <summary>A decoded piece, counted as unwritten before anything else (a commit) can make the reader look idle.</summary>
    private void AddPiece(ChangePiece piece)
    {
        Interlocked.Increment(ref _unwritten);
        _pieces.Add(piece);
    }

    /// <summary>Ends the current piece; transactions that changed none of our rows still report their end, so the batcher's position keeps up.</summary>
    private void Cut(long? commitEnd, DateTimeOffset? commitTime = null)
    {
        var batches = new List<ColumnBatch>();
        foreach (var shape in _relations.Values.Distinct())
        {
            if (shape is not null && shape.Builder.Count > 0) { batches.Add(shape.Builder.Flush()); }
        }

        AddPiece(new ChangePiece(batches, commitEnd, _rows, commitTime));
        _rows = 0;
    }
}
