using System.Net;
using System.Net.Sockets;

namespace Sluice.IntegrationTests.Support;

internal static class FreePort
{
    /// <summary>
    /// A TCP port on 127.0.0.1 that nothing listens on right now, for a server a test starts on it (often a child process,
    /// often again after killing it): below the kernel's ephemeral range and never twice in this test run (the bench's
    /// <see cref="Sluice.Bench.LoopbackPort"/>, which says why).
    /// </summary>
    public static int Next() => Sluice.Bench.LoopbackPort.Next();

    /// <summary>
    /// A port on 127.0.0.1 that refuses connections for as long as the returned reservation lives: bound, never listening.
    /// A port from <see cref="Next"/> is only free at the moment it is read; on a busy machine another test's server may
    /// take it, or the kernel may hand it out as the local port of a connection to itself, which then "answers".
    /// The reservation is bound with SO_REUSEPORT (and not SO_REUSEADDR): nothing else can bind the port, but a server of
    /// the test's own that sets SO_REUSEPORT too (<see cref="TcpForwarder"/>, <see cref="ThrowawaySmtp"/>) can listen on
    /// it meanwhile and take its connections; once that server is gone the port refuses again, never anyone else's.
    /// </summary>
    public static RefusingPort Refusing()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        AllowReusePort(socket);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new RefusingPort(socket);
    }

    /// <summary>SO_REUSEPORT (Linux): the socket may bind a port a <see cref="RefusingPort"/> holds.</summary>
    public static void AllowReusePort(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        const int SolSocket = 1, SoReusePort = 15;
        socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
    }
}

/// <summary>A bound, never-listening socket: connections to <see cref="Port"/> are refused until it is disposed.</summary>
internal sealed class RefusingPort(Socket socket) : IDisposable
{
    public int Port { get; } = ((IPEndPoint)socket.LocalEndPoint!).Port;

    public void Dispose() => socket.Dispose();
}
