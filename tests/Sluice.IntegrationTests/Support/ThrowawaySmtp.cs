using System.Diagnostics;
using System.Globalization;

namespace Sluice.IntegrationTests.Support;

/// <summary>
/// A real SMTP server of a test's own (Debian's aiosmtpd, as <c>scripts/services.sh</c> runs it), on a port of its
/// choosing, storing each message as an <c>.eml</c> file: for failures the shared catcher must not show (a server
/// that is down then up, one that refuses some recipients for good, one that keeps a message and is slow to say so).
/// </summary>
internal sealed class ThrowawaySmtp : IDisposable
{
    private const string Script = """
        import asyncio, os, sys, time, uuid
        from aiosmtpd.smtp import SMTP
        host, port, maildir, reject, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if reject and reject in address:
                    return "550 5.1.1 <%s>: Recipient address rejected: user unknown" % address
                envelope.rcpt_tos.append(address)
                return "250 OK"
            async def handle_DATA(self, server, session, envelope):
                data = envelope.original_content or envelope.content
                if isinstance(data, str):
                    data = data.encode("utf-8", "surrogateescape")
                head = b"X-Sluice-Rcpt-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n"
                name = "%020d-%s.eml" % (time.time_ns(), uuid.uuid4().hex[:8])
                tmp = os.path.join(maildir, "." + name)
                with open(tmp, "wb") as f:
                    f.write(head + data)
                os.rename(tmp, os.path.join(maildir, name))
                if hold > 0:
                    await asyncio.sleep(hold)
                return "250 Message accepted for delivery"
        async def main():
            server = await asyncio.get_running_loop().create_server(lambda: SMTP(Handler(), hostname="throwaway"), host, port, reuse_port=True)
            print("listening", flush=True)
            await asyncio.Event().wait()
        asyncio.run(main())
        """;

    private readonly TempFolder _folder = new("sluice-smtp");
    private readonly RefusingPort? _reservation;
    private Process? _process;

    public ThrowawaySmtp(int? port = null, string reject = "", double holdSeconds = 0)
    {
        // The port is held for the server's whole life (SO_REUSEPORT: the catcher listens on it too): while the server is
        // not started, or stopped to be started again, it refuses, and no other test's server can take it.
        _reservation = port is null ? FreePort.Refusing() : null;
        Port = port ?? _reservation!.Port;
        Reject = reject;
        HoldSeconds = holdSeconds;
        MailDir = _folder.Sub("mail");
        Directory.CreateDirectory(MailDir);
        File.WriteAllText(_folder.Sub("catcher.py"), Script);
    }

    public int Port { get; }

    public string Reject { get; }

    public double HoldSeconds { get; }

    public string MailDir { get; }

    public int MailCount => Directory.EnumerateFiles(MailDir, "*.eml").Count();

    public bool Running => _process is { HasExited: false };

    public async Task StartAsync()
    {
        var info = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { _folder.Sub("catcher.py"), "127.0.0.1", Port.ToString(CultureInfo.InvariantCulture), MailDir, Reject, HoldSeconds.ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(a);
        }

        _process = Process.Start(info)!;
        var line = await _process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)); // python starts slowly on a loaded machine
        if (line != "listening")
        {
            throw new InvalidOperationException($"the throw-away SMTP server did not start: {line} {await _process.StandardError.ReadToEndAsync()}");
        }
    }

    public void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process?.Dispose();
        _process = null;
    }

    public void Dispose()
    {
        Stop();
        _reservation?.Dispose();
        _folder.Dispose();
    }
}
