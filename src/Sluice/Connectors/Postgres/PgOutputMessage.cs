using System.Buffers.Binary;
using System.Text;

namespace Sluice.Connectors.Postgres;

/// <summary>A column of a pgoutput Relation message: its name, type oid (a domain's own) and type modifier (-1: none).</summary>
internal readonly record struct PgOutputColumn(string Name, uint TypeOid, int TypeModifier);

/// <summary>A pgoutput Relation message: the table a relation id stands for until the next one of the same id.</summary>
internal sealed record PgOutputRelation(uint Id, string Namespace, string Name, IReadOnlyList<PgOutputColumn> Columns)
{
    /// <summary>The table's replica identity: <c>d</c> default (the key), <c>f</c> full (the whole old row), <c>i</c> an index, <c>n</c> nothing.</summary>
    public char ReplicaIdentity { get; init; } = 'd';
}

/// <summary>A Begin message: the transaction's commit LSN, commit time and id.</summary>
internal readonly record struct PgOutputBegin(long FinalLsn, DateTime CommitTime, long Xid);

/// <summary>
/// One tuple of an Insert, Update or Delete: per column its kind and, for text, where its bytes are in the message
/// (offsets, so the same instance serves every message without copying values).
/// </summary>
internal sealed class PgTuple
{
    private PgValueKind[] _kinds = new PgValueKind[16];
    private (int Start, int Length)[] _text = new (int, int)[16];

    public int Count { get; private set; }

    public PgValueKind Kind(int column) => _kinds[column];

    public ReadOnlySpan<byte> Text(ReadOnlySpan<byte> message, int column) => message.Slice(_text[column].Start, _text[column].Length);

    internal void Reset(int count)
    {
        if (_kinds.Length < count)
        {
            _kinds = new PgValueKind[count];
            _text = new (int, int)[count];
        }

        Count = count;
    }

    internal void Set(int column, PgValueKind kind, int start, int length)
    {
        _kinds[column] = kind;
        _text[column] = (start, length);
    }
}

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

    /// <summary>Begin: final LSN, commit time (microseconds since 2000-01-01 UTC), transaction id.</summary>
    public static PgOutputBegin Begin(ReadOnlySpan<byte> data) => new(
        BeginFinalLsn(data),
        PostgresEpoch.AddTicks(BinaryPrimitives.ReadInt64BigEndian(data[9..]) * 10),
        BinaryPrimitives.ReadUInt32BigEndian(data[17..]));

    private static readonly DateTime PostgresEpoch = new(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>Commit: the end LSN of the transaction (after flags and the commit LSN).</summary>
    public static long CommitEndLsn(ReadOnlySpan<byte> data) => unchecked((long)BinaryPrimitives.ReadUInt64BigEndian(data[10..]));

    /// <summary>The commit's timestamp (microseconds since 2000-01-01 UTC after the two LSNs).</summary>
    public static DateTimeOffset CommitTime(ReadOnlySpan<byte> data) =>
        new DateTimeOffset(PostgresEpoch.AddTicks(BinaryPrimitives.ReadInt64BigEndian(data[18..]) * 10));

    /// <summary>
    /// Message (<c>pg_logical_emit_message</c>): whether it is transactional, its LSN, prefix and content (as UTF-8 text).
    /// Protocol version 1 carries no transaction id in it.
    /// </summary>
    public (bool Transactional, long Lsn, string Prefix, string Content) LogicalMessage()
    {
        var transactional = Byte() == 1;
        var lsn = unchecked((long)UInt64());
        var prefix = CString();
        var length = checked((int)UInt32());
        var content = Encoding.UTF8.GetString(_data.Slice(_at, length));
        _at += length;
        return (transactional, lsn, prefix, content);
    }

    public PgOutputRelation Relation()
    {
        var id = UInt32();
        var schema = CString();
        var name = CString();
        var identity = (char)Byte();
        var count = BinaryPrimitives.ReadInt16BigEndian(_data[_at..]);
        _at += 2;
        var columns = new PgOutputColumn[count];
        for (var i = 0; i < count; i++)
        {
            Skip(1); // flags: part of the key
            var column = CString();
            var type = UInt32();
            columns[i] = new PgOutputColumn(column, type, unchecked((int)UInt32()));
        }

        return new PgOutputRelation(id, schema, name, columns) { ReplicaIdentity = identity };
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

    /// <summary>Reads a tuple into <paramref name="into"/>: kinds, and where each text value lies in the message.</summary>
    public void Tuple(PgTuple into)
    {
        var count = TupleColumns();
        into.Reset(count);
        for (var i = 0; i < count; i++)
        {
            var kind = Value(out var text);
            into.Set(i, kind, kind == PgValueKind.Text ? _at - text.Length : 0, text.Length);
        }
    }

    /// <summary>Truncate: the relation ids truncated (after the count and the option flags).</summary>
    public uint[] TruncatedRelations()
    {
        var count = (int)UInt32();
        Skip(1); // options: CASCADE, RESTART IDENTITY
        var ids = new uint[count];
        for (var i = 0; i < count; i++) { ids[i] = UInt32(); }
        return ids;
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
