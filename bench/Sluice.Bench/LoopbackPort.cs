using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sluice.Bench;

/// <summary>
/// TCP ports on 127.0.0.1 for the servers a benchmark (or a test) starts as child processes. A port the kernel hands
/// out to a port-0 listener is in its ephemeral range, which it also hands out as the local port of every outgoing
/// connection: on a machine busy with connections (a load generator, workers, a test suite beside it) one of them can
/// take the port between the pick and the server's bind, and the server exits at start (CI of stop 28: bench cluster's
/// NATS node "not ready within 60 s"). So ports are taken below that range, and never twice in this process.
/// </summary>
public static class LoopbackPort
{
    private const int Lowest = 20000;
    private static readonly HashSet<int> Given = [];
    private static readonly int Below = EphemeralLow();

    /// <summary>
    /// A port that nothing listens on right now, below the ephemeral range and not given before in this process (one in
    /// use when picked is skipped). A process elsewhere on the machine may still take it: a server that fails to bind
    /// should be started again on another.
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
