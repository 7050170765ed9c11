namespace Sluice.Tests.EngagementCdc;

/// <summary>pgoutput messages as the server sends them, for decoding tests.</summary>
internal static class PgMessages
{
    public static byte[] Message(char kind, Action<PgWriter> body)
    {
        var writer = new PgWriter();
        writer.Byte((byte)kind);
        body(writer);
        return writer.Bytes.ToArray();
    }
}

internal sealed class PgWriter
{
    public List<byte> Bytes { get; } = [];

    public void Byte(byte b) => Bytes.Add(b);

    public void Int16(short v) => Bytes.AddRange(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v)));

    public void UInt32(uint v) => Bytes.AddRange(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v)));

    public void UInt64(ulong v) => Bytes.AddRange(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v)));

    public void CString(string s) { Bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(s)); Bytes.Add(0); }

    public void Text(string s)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(s);
        Byte((byte)'t');
        UInt32((uint)utf8.Length);
        Bytes.AddRange(utf8);
    }
}
