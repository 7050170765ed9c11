using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;
using Sluice.Core.DeadLetters;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>Rows decoded from the stream; <see cref="CommitEnd"/> is set on the piece that ends a transaction (its end LSN).</summary>
internal sealed record ChangePiece(IReadOnlyList<ColumnBatch> Tables, long? CommitEnd, int Rows);

/// <summary>
/// Decodes pgoutput messages into pieces of at most <see cref="PieceRows"/> rows, written to a bounded channel (the
/// reader waits when the batcher is behind, and the server waits for the reader: back-pressure reaches the WAL sender).
/// </summary>
internal sealed class PgChangeReader(PostgresCdcOptions options, string deadLetterSource, DeadLetterStore deadLetters, ILogger log)
{
    public const int PieceRows = 512;

    private readonly Dictionary<uint, PgTableShape?> _relations = [];
    private volatile bool _inTransaction;
    private PgTableShape? _current;
    private byte[] _buffer = new byte[4096];
    private long _piecesWritten;

    public bool InTransaction => _inTransaction;

    public long PiecesWritten => Interlocked.Read(ref _piecesWritten);

    public async Task RunAsync(LogicalReplicationConnection connection, PgOutputReplicationSlot slot, NpgsqlLogSequenceNumber start, ChannelWriter<ChangePiece> output, CancellationToken ct)
    {
        var replication = new PgOutputReplicationOptions(options.Publication, PgOutputProtocolVersion.V1);
        long finalLsn = 0;
        var rows = 0;
        var rowInTransaction = 0;
        await foreach (var message in connection.StartReplication(slot, replication, ct, start).ConfigureAwait(false))
        {
            switch (message)
            {
                case BeginMessage begin:
                    finalLsn = unchecked((long)(ulong)begin.TransactionFinalLsn);
                    rowInTransaction = 0;
                    _inTransaction = true;
                    break;

                case RelationMessage relation:
                    if (_relations.TryGetValue(relation.RelationId, out var old) && old is not null && old.Builder.Count > 0)
                    {
                        // The table's columns changed mid-stream: rows so far keep the old shape.
                        await FlushAsync(output, null, rows, ct).ConfigureAwait(false);
                        rows = 0;
                    }

                    _relations[relation.RelationId] = Shape(relation, old);
                    break;

                case InsertMessage insert when ShapeOf(insert.Relation) is { } shape:
                    rows = await SwitchAsync(shape, output, rows, ct).ConfigureAwait(false);
                    await AddRowAsync(shape, insert.NewRow, "c", finalLsn, ct).ConfigureAwait(false);
                    rows++;
                    break;

                case UpdateMessage update when ShapeOf(update.Relation) is { } shape:
                    if (shape.Table.OnUpdate == ChangePolicy.Emit)
                    {
                        rows = await SwitchAsync(shape, output, rows, ct).ConfigureAwait(false);
                        await AddRowAsync(shape, update.NewRow, "u", finalLsn, ct).ConfigureAwait(false);
                        rows++;
                    }
                    else if (shape.Table.OnUpdate == ChangePolicy.DeadLetter)
                    {
                        await DeadLetterAsync(shape, update.NewRow, "update", finalLsn, rowInTransaction, ct).ConfigureAwait(false);
                    }

                    break;

                case DeleteMessage delete when ShapeOf(delete.Relation) is { } shape:
                    var deleted = delete switch { KeyDeleteMessage k => k.Key, FullDeleteMessage f => f.OldRow, _ => null };
                    if (deleted is not null && shape.Table.OnDelete == ChangePolicy.Emit)
                    {
                        rows = await SwitchAsync(shape, output, rows, ct).ConfigureAwait(false);
                        await AddRowAsync(shape, deleted, "d", finalLsn, ct).ConfigureAwait(false);
                        rows++;
                    }
                    else if (deleted is not null && shape.Table.OnDelete == ChangePolicy.DeadLetter)
                    {
                        await DeadLetterAsync(shape, deleted, "delete", finalLsn, rowInTransaction, ct).ConfigureAwait(false);
                    }

                    break;

                case TruncateMessage truncate:
                    foreach (var r in truncate.Relations.Where(r => ShapeOf(r) is not null))
                    {
                        PostgresLog.Truncate(log, r.RelationName, PgCdcState.Lsn(finalLsn));
                    }

                    break;

                case CommitMessage commit:
                    await FlushAsync(output, unchecked((long)(ulong)commit.TransactionEndLsn), rows, ct).ConfigureAwait(false);
                    rows = 0;
                    _inTransaction = false;
                    break;
            }

            rowInTransaction++;
            if (rows >= PieceRows)
            {
                await FlushAsync(output, null, rows, ct).ConfigureAwait(false);
                rows = 0;
            }
        }
    }

    private PgTableShape? ShapeOf(RelationMessage relation) => _relations.GetValueOrDefault(relation.RelationId);

    /// <summary>
    /// Rows keep their order across tables (a content update, then the events after it): a row of another table than
    /// the pending ones first ends the current piece.
    /// </summary>
    private async Task<int> SwitchAsync(PgTableShape shape, ChannelWriter<ChangePiece> output, int rows, CancellationToken ct)
    {
        if (_current is not null && !ReferenceEquals(_current, shape) && _current.Builder.Count > 0)
        {
            await FlushAsync(output, null, rows, ct).ConfigureAwait(false);
            return 0;
        }

        return rows;
    }

    private PgTableShape? Shape(RelationMessage relation, PgTableShape? old)
    {
        if (relation.Namespace != options.Schema || options.Table(relation.RelationName) is not { } table)
        {
            return null;
        }

        var columns = relation.Columns.Select(c => (c.ColumnName, PgTypes.FieldTypeOf(c.DataTypeId))).ToList();
        return old is not null && old.SameColumns(columns) ? old : new PgTableShape(table, columns);
    }

    private async Task AddRowAsync(PgTableShape shape, ReplicationTuple tuple, string op, long lsn, CancellationToken ct)
    {
        var i = 0;
        _current = shape;
        await foreach (var value in tuple.ConfigureAwait(false))
        {
            if (i < shape.ColumnCount && !value.IsDBNull && !value.IsUnchangedToastedValue)
            {
                var length = await ReadRawAsync(value).ConfigureAwait(false);
                if (!shape.Set(i, _buffer.AsSpan(0, length)))
                {
                    PostgresLog.BadValue(log, shape.Table.Name, PgCdcState.Lsn(lsn), shape.Schema.Fields[i].Name, shape.Types[i].ToString());
                }
            }

            i++;
        }

        shape.Commit(op, lsn);
    }

    /// <summary>
    /// The value's text bytes into a reused buffer (grown for a large value, shrunk back after): one copy, no string
    /// and no type converter per value.
    /// </summary>
    private async Task<int> ReadRawAsync(ReplicationValue value)
    {
        var length = value.Length;
        if (length > _buffer.Length) { _buffer = new byte[length]; }
        else if (_buffer.Length > 1 << 20 && length <= 4096) { _buffer = new byte[4096]; }
        var stream = value.GetStream();
        var read = 0;
        while (read < length)
        {
            // No token: with one, Npgsql registers a cancellation per read, a large share of the cost of a small value. This
            // only waits for the rest of a message the server is already sending; a stop takes effect between messages.
            var n = await stream.ReadAsync(_buffer.AsMemory(read, length - read), CancellationToken.None).ConfigureAwait(false);
            if (n == 0) { throw new EndOfStreamException($"replication value ended after {read} of {length} bytes"); }
            read += n;
        }

        await stream.DisposeAsync().ConfigureAwait(false);
        return length;
    }

    private async Task DeadLetterAsync(PgTableShape shape, ReplicationTuple tuple, string what, long lsn, int index, CancellationToken ct)
    {
        var row = new Dictionary<string, string?>(StringComparer.Ordinal);
        var i = 0;
        await foreach (var value in tuple.ConfigureAwait(false))
        {
            var name = i < shape.ColumnCount ? shape.Schema.Fields[i].Name : $"column{i}";
            row[name] = value.IsDBNull ? null : value.IsUnchangedToastedValue ? "(unchanged toasted value)" : await value.Get<string>(ct).ConfigureAwait(false);
            i++;
        }

        var position = $"{options.Schema}.{shape.Table.Name} {what} in the transaction committed at {PgCdcState.Lsn(lsn)}, change {index}";
        deadLetters.Add(deadLetterSource, position, $"{what} of {shape.Table.Name}: the table's on_{what} policy is dead_letter (not applied downstream)",
            JsonSerializer.Serialize(row), $"{deadLetterSource}:{options.Slot}:{lsn}:{index}");
    }

    private async Task FlushAsync(ChannelWriter<ChangePiece> output, long? commitEnd, int rows, CancellationToken ct)
    {
        var tables = new List<ColumnBatch>();
        foreach (var shape in _relations.Values.Distinct())
        {
            if (shape is not null && shape.Builder.Count > 0) { tables.Add(shape.Builder.Flush()); }
        }

        // Transactions that changed none of our rows still report their end, so the batcher's position keeps up.
        await output.WriteAsync(new ChangePiece(tables, commitEnd, rows), ct).ConfigureAwait(false);
        Interlocked.Increment(ref _piecesWritten);
    }
}
