using System.Net.Sockets;
using System.Reflection;
using Npgsql.Replication;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Keeps the replication socket from waking the process while the reader lingers (<see cref="PostgresCdcOptions.BatchLinger"/>).
/// The WAL sender flushes every message it decodes, so at a steady rate each message is a TCP segment of its own; .NET
/// watches every socket with edge-triggered epoll, and each arrival wakes its socket thread, which queues a thread-pool
/// work item to look at the socket, whether or not a read is waiting (bench cdc: ~1,100 epoll events a second at 1,000
/// changes/s, most of Sluice's CPU as context switches). While the reader sleeps it needs none of them: <see cref="Hold"/>
/// raises the socket's receive low-water mark (<c>SO_RCVLOWAT</c>), below which Linux (4.18+) does not signal the socket
/// readable, and <see cref="Release"/> puts it back to one byte, at which the kernel signals at once if anything arrived
/// meanwhile. A read still returns what has arrived (the mark only holds back the wake-up), and the kernel signals
/// anyway when its buffer runs short, so nothing can be stranded; after <see cref="Release"/> everything works as before.
/// </summary>
/// <remarks>
/// Npgsql does not expose the connection's socket; it is taken from its connector by reflection (a test checks it is
/// found with the pinned Npgsql, <c>PgReplicationSocketTests</c>). Without it (another Npgsql, another OS), or when the
/// option is refused, the reader works exactly as before, only with the wake-ups.
/// </remarks>
internal sealed class PgReplicationSocket
{
    /// <summary>The mark while held: more than a linger gathers at a rate where wake-ups matter (bench cdc: ~30 KB in 150 ms); reached, it wakes once.</summary>
    public const int HeldLowWater = 256 * 1024;

    private readonly Socket _socket;
    private bool _held;

    private PgReplicationSocket(Socket socket) => _socket = socket;

    /// <summary>The replication connection's socket, or null when it cannot be had or cannot take the option.</summary>
    public static PgReplicationSocket? Of(LogicalReplicationConnection connection)
    {
        if (!OperatingSystem.IsLinux() || Find(connection) is not { } socket) { return null; }
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveLowWater, 1);
            return new PgReplicationSocket(socket);
        }
        catch (SocketException)
        {
            return null;
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    private static Socket? Find(LogicalReplicationConnection connection)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.NonPublic;
        var connector = typeof(ReplicationConnection).GetProperty("Connector", flags)?.GetValue(connection);
        return connector?.GetType().GetField("_socket", flags)?.GetValue(connector) as Socket;
    }

    /// <summary>Bytes received and not yet read by Npgsql (the kernel's count): what arrived while held.</summary>
    public int Available
    {
        get
        {
            try
            {
                return _socket.Available;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // A broken connection: the pending read reports it.
                return 1;
            }
        }
    }

    /// <summary>No wake-ups from arrivals until <see cref="Release"/>.</summary>
    public void Hold() => Set(HeldLowWater, held: true);

    /// <summary>Back to a wake-up per arrival; signalled at once if anything arrived while held.</summary>
    public void Release()
    {
        if (_held) { Set(1, held: false); }
    }

    private void Set(int lowWater, bool held)
    {
        try
        {
            _socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveLowWater, lowWater);
            _held = held;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // A closed or broken connection: the pending read reports it.
            _held = false;
        }
    }
}
