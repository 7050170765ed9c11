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
internal sealed record ChangePiece(IReadOnlyList<ColumnBatch> Tables, long? CommitEnd, int Rows, DateTimeOffset? CommitTime = null);

/// <summary>
/// Decodes pgoutput messages into pieces of at most <see cref="PieceRows"/> rows, written to a bounded channel (the
/// reader waits when the batcher is behind, and the server waits for the reader: back-pressure reaches the WAL sender).
/// Each message is read whole from its XLogData and decoded in one sync pass (<see cref="PgOutputMessage"/>).
/// </summary>
internal sealed class PgChangeReader(PostgresCdcOptions options, string deadLetterSource, DeadLetterStore deadLetters, ILogger log, TimeProvider time)
{
    private long _lastMessageTicks;

    public const int PieceRows = 512;

    private readonly Dictionary<uint, PgTableShape?> _relations = [];
    private readonly List<ChangePiece> _pieces = [];
    private volatile bool _inTransaction;
    private PgTableShape? _current;
    private byte[] _buffer = new byte[4096];
    private long _piecesWritten;
    private long _finalLsn;
    private int _rows;
    private int _rowInTransaction;

    public bool InTransaction => _inTransaction;

    public long PiecesWritten => Interlocked.Read(ref _piecesWritten);

    /// <summary>When the server last sent a change of any table of the slot's database (null: nothing yet on this connection).</summary>
    public DateTimeOffset? LastMessageAt => Interlocked.Read(ref _lastMessageTicks) is var t and > 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    public async Task RunAsync(LogicalReplicationConnection connection, PgOutputReplicationSlot slot, NpgsqlLogSequenceNumber start, ChannelWriter<ChangePiece> output, CancellationToken ct)
    {
        // `messages`: the source's own heartbeats (PgSlotMonitor) arrive as logical messages; each moves the connection's
        // received position, which the idle status loop confirms, so the slot advances while the published tables are idle.
        KeyValuePair<string, string?>[] plugin = [new("proto_version", "1"), new("publication_names", $"\"{options.Publication}\""), new("messages", "true")];
        await foreach (var message in connection.StartLogicalReplication(slot, ct, start, plugin).ConfigureAwait(false))
        {
            var length = await ReadAsync(message.Data).ConfigureAwait(false);
            Interlocked.Exchange(ref _lastMessageTicks, time.GetUtcNow().UtcTicks);
            Decode(_buffer.AsSpan(0, length));
            foreach (var piece in _pieces)
            {
                await output.WriteAsync(piece, ct).ConfigureAwait(false);
                Interlocked.Increment(ref _piecesWritten);
            }

            _pieces.Clear();
        }
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

    private void Decode(ReadOnlySpan<byte> data)
    {
        var message = new PgOutputMessage(data);
        switch (message.Kind)
        {
            case 'B':
                _finalLsn = PgOutputMessage.BeginFinalLsn(data);
                _rowInTransaction = 0;
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
                AddRow(shape, ref message, "c");
                break;

            case 'U' when ShapeOf(message.UInt32()) is { } shape:
                if (message.Byte() is (byte)'K' or (byte)'O')
                {
                    message.SkipTuple();
                    message.Skip(1);
                }

                if (shape.Table.OnUpdate == ChangePolicy.Emit) { AddRow(shape, ref message, "u"); }
                else if (shape.Table.OnUpdate == ChangePolicy.DeadLetter) { DeadLetter(shape, ref message, "update"); }
                break;

            case 'D' when ShapeOf(message.UInt32()) is { } shape:
                message.Skip(1); // 'K' (the key) or 'O' (the whole old row)
                if (shape.Table.OnDelete == ChangePolicy.Emit) { AddRow(shape, ref message, "d"); }
                else if (shape.Table.OnDelete == ChangePolicy.DeadLetter) { DeadLetter(shape, ref message, "delete"); }
                break;

            case 'T':
                var count = message.UInt32();
                message.Skip(1); // options: CASCADE, RESTART IDENTITY
                for (var i = 0; i < count; i++)
                {
                    if (ShapeOf(message.UInt32()) is { } truncated) { PostgresLog.Truncate(log, truncated.Table.Name, PgCdcState.Lsn(_finalLsn)); }
                }

                break;

            case 'C':
                Cut(PgOutputMessage.CommitEndLsn(data), PgOutputMessage.CommitTime(data));
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

    private PgTableShape? Shape(PgOutputRelation relation, PgTableShape? old)
    {
        if (relation.Namespace != options.Schema || options.Table(relation.Name) is not { } table)
        {
            return null;
        }

        var columns = relation.Columns.Select(c => (c.Name, PgTypes.FieldTypeOf(c.TypeOid))).ToList();
        return old is not null && old.SameColumns(columns) ? old : new PgTableShape(table, columns);
    }

    private void AddRow(PgTableShape shape, ref PgOutputMessage message, string op)
    {
        // Rows keep their order across tables (a content update, then the events after it): a row of another table
        // than the pending ones first ends the current piece.
        if (_current is not null && !ReferenceEquals(_current, shape) && _current.Builder.Count > 0)
        {
            Cut(null);
        }

        _current = shape;
        var columns = message.TupleColumns();
        for (var i = 0; i < columns; i++)
        {
            if (message.Value(out var text) == PgValueKind.Text && i < shape.ColumnCount && !shape.Set(i, text))
            {
                PostgresLog.BadValue(log, shape.Table.Name, PgCdcState.Lsn(_finalLsn), shape.Schema.Fields[i].Name, shape.Types[i].ToString());
            }
        }

        shape.Commit(op, _finalLsn);
        _rows++;
    }

    private void DeadLetter(PgTableShape shape, ref PgOutputMessage message, string what)
    {
        var row = new Dictionary<string, string?>(StringComparer.Ordinal);
        var columns = message.TupleColumns();
        for (var i = 0; i < columns; i++)
        {
            var kind = message.Value(out var text);
            var name = i < shape.ColumnCount ? shape.Schema.Fields[i].Name : $"column{i}";
            row[name] = kind switch { PgValueKind.Text => Encoding.UTF8.GetString(text), PgValueKind.Unchanged => "(unchanged toasted value)", _ => null };
        }

        var position = $"{options.Schema}.{shape.Table.Name} {what} in the transaction committed at {PgCdcState.Lsn(_finalLsn)}, change {_rowInTransaction}";
        deadLetters.Add(deadLetterSource, position, $"{what} of {shape.Table.Name}: the table's on_{what} policy is dead_letter (not applied downstream)",
            JsonSerializer.Serialize(row), $"{deadLetterSource}:{options.Slot}:{_finalLsn}:{_rowInTransaction}");
    }

    /// <summary>Ends the current piece; transactions that changed none of our rows still report their end, so the batcher's position keeps up.</summary>
    private void Cut(long? commitEnd, DateTimeOffset? commitTime = null)
    {
        var tables = new List<ColumnBatch>();
        foreach (var shape in _relations.Values.Distinct())
        {
            if (shape is not null && shape.Builder.Count > 0) { tables.Add(shape.Builder.Flush()); }
        }

        _pieces.Add(new ChangePiece(tables, commitEnd, _rows, commitTime));
        _rows = 0;
    }
}
