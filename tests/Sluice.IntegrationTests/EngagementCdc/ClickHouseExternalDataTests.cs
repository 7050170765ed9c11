using System.Net.Sockets;
using System.Text;
using Sluice.Connectors.ClickHouse;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// A statement with external data (a keeping upsert of a ClickHouse mirror), then another request on the same
/// keep-alive connection, on the wire against the real ClickHouse 18.16. Its multipart reader stops at the close
/// delimiter: two bytes after it (.NET's multipart epilogue, CRLF) that it has not read with the body are answered
/// with an unasked-for 400 and no message, which the client takes as the answer to its next request (CI saw a
/// mirror's delete rows refused so). Each step waits for the server's answer, so the order of bytes is fixed.
/// </summary>
public sealed class ClickHouseExternalDataTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_next_request_on_the_connection_is_answered_after_a_statement_with_external_data()
    {
        using var content = new ClickHouseExternalData("SELECT count(), sum(c0) FROM _sluice_stage", "_sluice_stage", "c0 UInt8", new byte[] { 1, 2, 3 });
        var body = await content.ReadAsByteArrayAsync();
        Encoding.ASCII.GetString(body).ShouldEndWith("--", Case.Sensitive, "the body ends at its close delimiter");
        using var client = await ConnectAsync();
        var stream = client.GetStream();

        await SendAsync(stream, content.Headers.ContentType!.ToString(), body, body.Length);
        (await ReadAnswerAsync(stream)).ShouldBe("200 3\t6\n");
        await SendAsync(stream, "text/plain", "SELECT 42"u8.ToArray());
        (await ReadAnswerAsync(stream)).ShouldBe("200 42\n");
    }

    [Fact]
    public async Task Bytes_after_the_close_delimiter_that_ClickHouse_did_not_read_are_answered_with_a_400_with_no_message()
    {
        using var multipart = new MultipartFormDataContent();
        multipart.Add(new StringContent("SELECT count() FROM _sluice_stage"), "query");
        multipart.Add(new StringContent("c0 UInt8"), "_sluice_stage_structure");
        multipart.Add(new StringContent("RowBinary"), "_sluice_stage_format");
        multipart.Add(new ByteArrayContent([1, 2, 3]), "_sluice_stage", "_sluice_stage");
        var body = await multipart.ReadAsByteArrayAsync();
        Encoding.ASCII.GetString(body).ShouldEndWith("--\r\n", Case.Sensitive, ".NET's multipart body ends with an epilogue");
        using var client = await ConnectAsync();
        var stream = client.GetStream();

        // The server answers at the close delimiter; the epilogue arrives after its last read of the body.
        await SendAsync(stream, multipart.Headers.ContentType!.ToString(), body[..^2], body.Length);
        (await ReadAnswerAsync(stream)).ShouldBe("200 3\n");
        // The epilogue alone, read as the start of a next request, is answered unasked: what the client's next request
        // on this connection would have read as its answer.
        await stream.WriteAsync(body.AsMemory(body.Length - 2));
        (await ReadAnswerAsync(stream)).ShouldBe("400 ");
    }

    private static async Task<TcpClient> ConnectAsync()
    {
        var url = new Uri(ServerSettings.ClickHouseUrl);
        var client = new TcpClient { NoDelay = true, ReceiveTimeout = (int)Patience.TotalMilliseconds };
        await client.ConnectAsync(url.Host, url.Port);
        return client;
    }

    /// <summary>A POST of <paramref name="body"/> whose Content-Length says <paramref name="length"/> (default: the body's).</summary>
    private static async Task SendAsync(NetworkStream stream, string contentType, byte[] body, int? length = null)
    {
        var head = $"POST / HTTP/1.1\r\nHost: clickhouse\r\nConnection: keep-alive\r\nContent-Type: {contentType}\r\nContent-Length: {length ?? body.Length}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body);
    }

    /// <summary>One answer: its status code, a space, and its body (chunked or by Content-Length, as the server sends).</summary>
    private static async Task<string> ReadAnswerAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var reader = new AnswerReader(stream, timeout.Token);
        var status = await reader.LineAsync();
        var headers = new List<string>();
        for (var line = await reader.LineAsync(); line.Length > 0; line = await reader.LineAsync()) { headers.Add(line); }
        var text = new StringBuilder();
        if (headers.Any(h => h.Equals("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)))
        {
            for (var size = Convert.ToInt32(await reader.LineAsync(), 16); size > 0; size = Convert.ToInt32(await reader.LineAsync(), 16))
            {
                text.Append(Encoding.UTF8.GetString(await reader.BytesAsync(size)));
                await reader.LineAsync();
            }

            await reader.LineAsync();
        }
        else if (headers.FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) is { } length)
        {
            text.Append(Encoding.UTF8.GetString(await reader.BytesAsync(int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture))));
        }

        return status.Split(' ')[1] + " " + text;
    }

    private sealed class AnswerReader(NetworkStream stream, CancellationToken ct)
    {
        public async Task<string> LineAsync()
        {
            var line = new List<byte>();
            while (true)
            {
                var b = (await BytesAsync(1))[0];
                if (b == '\n') { return Encoding.ASCII.GetString(line.ToArray()).TrimEnd('\r'); }
                line.Add(b);
            }
        }

        public async Task<byte[]> BytesAsync(int count)
        {
            var bytes = new byte[count];
            await stream.ReadExactlyAsync(bytes, ct);
            return bytes;
        }
    }
}
