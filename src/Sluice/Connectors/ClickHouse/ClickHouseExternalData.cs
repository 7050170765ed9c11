using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Sluice.Connectors.ClickHouse;

/// <summary>
/// A statement with one external table (ClickHouse's "external data") as a <c>multipart/form-data</c> body that ends
/// at its close delimiter (<c>--boundary--</c>), without the CRLF epilogue .NET's <c>MultipartFormDataContent</c> adds.
/// ClickHouse 18.16 (Poco's multipart reader) stops reading at that delimiter: when the epilogue's two bytes are not
/// already in its buffer, they stay on the keep-alive connection, and it answers them at once with an unasked-for
/// <c>400 Bad Request</c> (no body, nothing logged), which the client takes as the answer to its next request there.
/// RFC 2046 makes the epilogue optional. The statement comes first, then the table's structure and format, then its rows.
/// </summary>
internal sealed class ClickHouseExternalData : HttpContent
{
    private readonly string _boundary = Guid.NewGuid().ToString("N");
    private readonly byte[] _head;
    private readonly ReadOnlyMemory<byte> _rows;
    private readonly byte[] _tail;

    public ClickHouseExternalData(string sql, string name, string structure, ReadOnlyMemory<byte> rows)
    {
        var head = new StringBuilder();
        Field(head, "query", sql);
        Field(head, name + "_structure", structure);
        Field(head, name + "_format", "RowBinary");
        head.Append("--").Append(_boundary).Append("\r\nContent-Disposition: form-data; name=\"").Append(name).Append("\"; filename=\"").Append(name)
            .Append("\"\r\nContent-Type: application/octet-stream\r\n\r\n");
        _head = Encoding.UTF8.GetBytes(head.ToString());
        _rows = rows;
        _tail = Encoding.ASCII.GetBytes("\r\n--" + _boundary + "--");
        Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/form-data; boundary={_boundary}");
    }

    private void Field(StringBuilder body, string name, string value) =>
        body.Append("--").Append(_boundary).Append("\r\nContent-Disposition: form-data; name=\"").Append(name).Append("\"\r\n\r\n").Append(value).Append("\r\n");

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(_head, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(_rows, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(_tail, cancellationToken).ConfigureAwait(false);
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override bool TryComputeLength(out long length)
    {
        length = _head.Length + _rows.Length + _tail.Length;
        return true;
    }
}
