using System.Buffers.Binary;
using System.Text;

namespace Sluice.Connectors.Postgres;

/// <summary>A column of a pgoutput Relation message: its name and type oid.</summary>
internal readonly record struct PgOutputColumn(string Name, uint TypeOid);

/// <summary>A pgoutput Relation message: the table a relation id stands for until the next one of the same id.</summary>
internal sealed record PgOutputRelation(uint Id, string Namespace, string Name, IReadOnlyList<PgOutputColumn> Columns);

/// <summary>
/// Reads the messages of the pgoutput plugin, protocol version 1 (PostgreSQL's "Logical Replication Message Formats"),
/// straight from the bytes of one XLogData message: a sync pass over a span instead of an async call per value.
/// Integers are big-endian; a tuple is a column count, then per column 'n' (NULL), 'u' (unchanged TOASTed value) or
/// 't' (text: Int32 length, bytes).
/// </summary>
internal ref struct PgOutputMessage(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _at = 1;

    /// <summary>B begin, C commit, R relation, I insert, U update, D delete, T truncate; Y type, O origin, M message.</summary>
    public readonly char Kind => _data.IsEmpty ? '\0' : (char)_data[0];

    public ulong UInt64()
    {
        var value = BinaryPrimitives.ReadUInt64BigEndian(_data[_at..]);
        _at += 8;
        return value;
    }

    public uint UInt32()
    {
        var value = BinaryPrimitives.ReadUInt32BigEndian(_data[_at..]);
        _at += 4;
        return value;
    }

    public byte Byte() => _data[_at++];

    public void Skip(int bytes) => _at += bytes;

    /// <summary>Begin: the transaction's final (commit) LSN.</summary>
    public static long BeginFinalLsn(ReadOnlySpan<byte> data) => unchecked((long)BinaryPrimitives.ReadUInt64BigEndian(data[1..]));

    /// <summary>Commit: the end LSN of the transaction (after flags and the commit LSN).</summary>
    public static long CommitEndLsn(ReadOnlySpan<byte> data) => unchecked((long)BinaryPrimitives.ReadUInt64BigEndian(data[10..]));

    /// <summary>The commit's timestamp (microseconds since 2000-01-01 UTC after the two LSNs).</summary>
    public static DateTimeOffset CommitTime(ReadOnlySpan<byte> data) =>
        PostgresEpoch.AddTicks(BinaryPrimitives.ReadInt64BigEndian(data[18..]) * 10);

    private static readonly DateTimeOffset PostgresEpoch = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public PgOutputRelation Relation()
    {
        var id = UInt32();
        var schema = CString();
        var name = CString();
        Skip(1); // replica identity setting
        var count = BinaryPrimitives.ReadInt16BigEndian(_data[_at..]);
        _at += 2;
        var columns = new PgOutputColumn[count];
        for (var i = 0; i < count; i++)
        {
            Skip(1); // flags: part of the key
            var column = CString();
            columns[i] = new PgOutputColumn(column, UInt32());
            Skip(4); // type modifier
        }

        return new PgOutputRelation(id, schema, name, columns);
    }

    /// <summary>Starts a tuple: its column count; read each column with <see cref="Value"/>.</summary>
    public int TupleColumns()
    {
        var count = BinaryPrimitives.ReadInt16BigEndian(_data[_at..]);
        _at += 2;
        return count;
    }

    /// <summary>The next column of a tuple: NULL, an unchanged TOASTed value (not sent), or text.</summary>
    public PgValueKind Value(out ReadOnlySpan<byte> text)
    {
        text = default;
        switch ((char)_data[_at++])
        {
            case 'n':
                return PgValueKind.Null;
            case 'u':
                return PgValueKind.Unchanged;
            case 't':
                var length = (int)UInt32();
                text = _data.Slice(_at, length);
                _at += length;
                return PgValueKind.Text;
            case var other:
                throw new InvalidDataException($"pgoutput: unexpected tuple value kind '{other}' (only text values are requested)");
        }
    }

    /// <summary>Skips a tuple (the old key of an update).</summary>
    public void SkipTuple()
    {
        for (var i = TupleColumns(); i > 0; i--) { Value(out _); }
    }

    private string CString()
    {
        var end = _data[_at..].IndexOf((byte)0);
        var text = Encoding.UTF8.GetString(_data.Slice(_at, end));
        _at += end + 1;
        return text;
    }
}

internal enum PgValueKind
{
    Null,
    Unchanged,
    Text,
}
