using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Sluice.Recipes.TestServers;

/// <summary>A message a <see cref="SmtpCatcher"/> accepted: the envelope and the raw message.</summary>
public sealed record CaughtMail(string From, IReadOnlyList<string> To, string Raw, DateTimeOffset ReceivedAt)
{
    /// <summary>The value of a header of the raw message (first occurrence, unfolded), or null.</summary>
    public string? Header(string name)
    {
        using var reader = new StringReader(Raw);
        string? line;
        string? value = null;
        while ((line = reader.ReadLine()) is { Length: > 0 })
        {
            if (value is not null && (line[0] == ' ' || line[0] == '\t')) { value += " " + line.Trim(); continue; }
            if (value is not null) { return value; }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Equals(name, StringComparison.OrdinalIgnoreCase)) { value = line[(colon + 1)..].Trim(); }
        }

        return value;
    }

    /// <summary>The text after the headers.</summary>
    public string Body
    {
        get
        {
            var at = Raw.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            return at < 0 ? "" : Raw[(at + 4)..];
        }
    }
}

/// <summary>
/// A minimal SMTP server on 127.0.0.1 that accepts every message and keeps it (in memory, the last
/// <see cref="Capacity"/>; and as <c>.eml</c> files when given a folder). For <c>sluice demo</c> and benchmarks on a
/// machine without a mail server: it speaks enough SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for MailKit and
/// any ordinary client, and nothing more (no TLS, no AUTH, no relaying).
/// </summary>
public sealed class SmtpCatcher : IAsyncDisposable
{
    public const int Capacity = 1000;

    private readonly TcpListener _listener;
    private readonly string? _folder;
    private readonly CancellationTokenSource _stop = new();
    private readonly Queue<CaughtMail> _mails = new();
    private readonly Lock _gate = new();
    private readonly Task _accepting;
    private long _count;

    public SmtpCatcher(string? folder = null, int port = 0)
    {
        _folder = folder;
        if (folder is not null) { Directory.CreateDirectory(folder); }
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync(_stop.Token);
    }

    public static string Host => "127.0.0.1";

    public int Port { get; }

    /// <summary>Messages accepted since start.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Raised for each accepted message, on the connection's thread.</summary>
    public event Action<CaughtMail>? Received;

    public IReadOnlyList<CaughtMail> Mails
    {
        get { lock (_gate) { return _mails.ToList(); } }
    }

    private async Task AcceptAsync(CancellationToken ct)
    {
        var sessions = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var socket = await _listener.AcceptTcpClientAsync(ct).ConfigureAwait(false);
                sessions.RemoveAll(t => t.IsCompleted);
                sessions.Add(Task.Run(() => SessionAsync(socket, ct), CancellationToken.None));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopping.
        }

        await Task.WhenAll(sessions).ConfigureAwait(false);
    }

    private async Task SessionAsync(TcpClient socket, CancellationToken ct)
    {
        using var _ = socket;
        try
        {
            var stream = socket.GetStream();
            using var reader = new StreamReader(stream, Encoding.Latin1, false, 8192, leaveOpen: true);
            await using var writer = new StreamWriter(stream, Encoding.Latin1, 1024, leaveOpen: true) { NewLine = "\r\n", AutoFlush = true };
            await writer.WriteLineAsync("220 sluice-catcher ESMTP ready").ConfigureAwait(false);
            string? from = null;
            var to = new List<string>();
            while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await writer.WriteAsync("250-sluice-catcher\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").ConfigureAwait(false);
                        break;
                    case "HELO":
                        await writer.WriteLineAsync("250 sluice-catcher").ConfigureAwait(false);
                        break;
                    case "MAIL":
                        from = Address(line);
                        to.Clear();
                        await writer.WriteLineAsync("250 2.1.0 Ok").ConfigureAwait(false);
                        break;
                    case "RCPT":
                        to.Add(Address(line));
                        await writer.WriteLineAsync("250 2.1.5 Ok").ConfigureAwait(false);
                        break;
                    case "DATA":
                        if (from is null || to.Count == 0)
                        {
                            await writer.WriteLineAsync("503 5.5.1 need MAIL and RCPT first").ConfigureAwait(false);
                            break;
                        }

                        await writer.WriteLineAsync("354 End data with <CR><LF>.<CR><LF>").ConfigureAwait(false);
                        var raw = new StringBuilder();
                        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } data && data != ".")
                        {
                            raw.Append(data.StartsWith("..", StringComparison.Ordinal) ? data[1..] : data).Append("\r\n");
                        }

                        var id = Keep(new CaughtMail(from, to.ToList(), raw.ToString(), DateTimeOffset.UtcNow));
                        await writer.WriteLineAsync($"250 2.0.0 Ok: queued as {id}").ConfigureAwait(false);
                        from = null;
                        to.Clear();
                        break;
                    case "RSET":
                        from = null;
                        to.Clear();
                        await writer.WriteLineAsync("250 2.0.0 Ok").ConfigureAwait(false);
                        break;
                    case "NOOP":
                        await writer.WriteLineAsync("250 2.0.0 Ok").ConfigureAwait(false);
                        break;
                    case "QUIT":
                        await writer.WriteLineAsync("221 2.0.0 Bye").ConfigureAwait(false);
                        return;
                    default:
                        await writer.WriteLineAsync("502 5.5.2 command not implemented").ConfigureAwait(false);
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A client that goes away mid-session loses only its unfinished message.
        }
    }

    private long Keep(CaughtMail mail)
    {
        var id = Interlocked.Increment(ref _count);
        lock (_gate)
        {
            _mails.Enqueue(mail);
            while (_mails.Count > Capacity) { _mails.Dequeue(); }
        }

        if (_folder is not null)
        {
            var name = $"{mail.ReceivedAt.ToUnixTimeMilliseconds()}-{id:D6}.eml";
            var temp = Path.Combine(_folder, "." + name);
            File.WriteAllText(temp, $"X-Sluice-Mail-From: {mail.From}\r\nX-Sluice-Rcpt-To: {string.Join(", ", mail.To)}\r\n{mail.Raw}", Encoding.Latin1);
            File.Move(temp, Path.Combine(_folder, name));
        }

        Received?.Invoke(mail);
        return id;
    }

    private static string Address(string line)
    {
        var open = line.IndexOf('<', StringComparison.Ordinal);
        var close = line.IndexOf('>', StringComparison.Ordinal);
        return open >= 0 && close > open ? line[(open + 1)..close] : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
    }
}
