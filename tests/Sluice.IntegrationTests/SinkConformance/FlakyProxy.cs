using System.Net;
using System.Net.Sockets;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// A TCP proxy in front of a real server that the test can break: while broken it cuts the connections it carries and
/// closes every new one at once (a server gone, a cable pulled), counting them; healed, it forwards again. The shared
/// servers themselves are never touched.
/// </summary>
internal sealed class FlakyProxy : ITransientFault
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<TcpClient> _open = [];
    private volatile bool _broken;
    private int _failures;

    public FlakyProxy(string host, int port)
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(() => AcceptAsync(host, port));
    }

    public int Port { get; }

    public int Failures => Volatile.Read(ref _failures);

    public void Break()
    {
        _broken = true;
        lock (_open)
        {
            foreach (var c in _open) { c.Close(); }
            _open.Clear();
        }
    }

    public void Heal() => _broken = false;

    private async Task AcceptAsync(string host, int port)
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

            if (_broken)
            {
                Interlocked.Increment(ref _failures);
                client.Client.LingerState = new LingerOption(true, 0);
                client.Close();
                continue;
            }

            _ = PipeAsync(client, host, port);
        }
    }

    private async Task PipeAsync(TcpClient client, string host, int port)
    {
        using var server = new TcpClient();
        lock (_open) { _open.Add(client); _open.Add(server); }
        try
        {
            await server.ConnectAsync(host, port, _stop.Token);
            var a = client.GetStream();
            var b = server.GetStream();
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // A side closed, or the proxy cut it: the connection ends.
        }
        finally
        {
            lock (_open) { _open.Remove(client); _open.Remove(server); }
            client.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Break();
        _stop.Dispose();
    }
}
