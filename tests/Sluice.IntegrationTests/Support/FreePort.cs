using System.Net;
using System.Net.Sockets;

namespace Sluice.IntegrationTests.Support;

internal static class FreePort
{
    /// <summary>A TCP port on 127.0.0.1 that nothing listens on right now.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// A port on 127.0.0.1 that refuses connections for as long as the returned reservation lives: bound, never listening.
    /// A port from <see cref="Next"/> is only free at the moment it is read; on a busy machine another test's server may
    /// take it, or the kernel may hand it out as the local port of a connection to itself, which then "answers".
    /// </summary>
    public static RefusingPort Refusing()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new RefusingPort(socket);
    }
}

/// <summary>A bound, never-listening socket: connections to <see cref="Port"/> are refused until it is disposed.</summary>
internal sealed class RefusingPort(Socket socket) : IDisposable
{
    public int Port { get; } = ((IPEndPoint)socket.LocalEndPoint!).Port;

    public void Dispose() => socket.Dispose();
}
