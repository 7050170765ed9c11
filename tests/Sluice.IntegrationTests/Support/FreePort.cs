using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sluice.IntegrationTests.Support;

internal static class FreePort
{
    private const int Lowest = 20000;
    private static readonly HashSet<int> Given = [];
    private static readonly int Below = EphemeralLow();

    /// <summary>
    /// A TCP port on 127.0.0.1 that nothing listens on right now, for a server a test starts on it (often a child process,
    /// often again after killing it). Taken below the kernel's ephemeral range, so the kernel never hands it out to a
    /// port-0 listener or as the local port of an outgoing connection while the server is down or starting, and never
    /// twice in this test run, so no other test of the run picks it; one that is in use when picked is skipped.
    /// A process elsewhere on the machine may still take it: a server that fails to bind should be started on another.
    /// </summary>
    public static int Next()
    {
        if (Below - Lowest < 1000) { return Ephemeral(); }
        lock (Given)
        {
            for (var attempt = 0; attempt < 200; attempt++)
            {
                var port = Random.Shared.Next(Lowest, Below);
                if (Given.Contains(port) || !Bindable(port)) { continue; }
                Given.Add(port);
                return port;
            }
        }

        return Ephemeral();
    }

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

    private static bool Bindable(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int Ephemeral()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The first port of the kernel's ephemeral range (32768 when it cannot be read).</summary>
    private static int EphemeralLow()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(range[0], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768;
        }
    }
}

/// <summary>A bound, never-listening socket: connections to <see cref="Port"/> are refused until it is disposed.</summary>
internal sealed class RefusingPort(Socket socket) : IDisposable
{
    public int Port { get; } = ((IPEndPoint)socket.LocalEndPoint!).Port;

    public void Dispose() => socket.Dispose();
}
