using System.Net;
using System.Net.Sockets;

namespace Sluice.IntegrationTests.Support;

/// <summary>
/// Forwards connections on a local port to a server: a way to make a server unreachable (not started yet) and then
/// reachable, without touching the server. Give it the port of a <see cref="FreePort.Refusing"/> reservation that the
/// test holds throughout: before the forwarder and after it is disposed the port refuses, and no other server can take it.
/// </summary>
internal sealed class TcpForwarder : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TcpForwarder(int port, string targetHost, int targetPort)
    {
        _listener = new TcpListener(IPAddress.Loopback, port);
        // A port a FreePort.Refusing reservation holds: the forwarder listens on it while it lives, and the port refuses again after.
        FreePort.AllowReusePort(_listener.Server);
        _listener.Start();
        _accepting = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                _ = PipeAsync(client, targetHost, targetPort);
            }
        });
    }

    private async Task PipeAsync(TcpClient client, string host, int port)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(host, port, _stop.Token);
                var a = client.GetStream();
                var b = server.GetStream();
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // A side closed: the connection ends.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
