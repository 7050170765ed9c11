using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Sluice.IntegrationTests.Support;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.TenantAnalytics;

/// <summary>
/// One tenant's slow requests cannot keep another tenant's events out: its share of the in-flight budget is bounded,
/// and bodies slower than the minimum data rate are cut.
/// </summary>
public sealed class TenantFairnessTests
{
    private const int SlowConnections = 8;
    private const int Declared = 32 << 20;

    [Fact]
    public async Task Eight_trickling_connections_of_one_tenant_leave_room_for_another_and_are_cut_by_the_data_rate_rule()
    {
        using var engine = new Engine();
        await using var server = await TenantAnalyticsServer.StartAsync(engine);
        var slowToken = server.Token("slow", TokenRole.Writer);
        var otherToken = server.Token("other", TokenRole.Writer);

        // Eight connections each declare the largest body (8 x 32 MB: the stream's whole 256 MB budget) and trickle
        // 400 bytes/s, above Kestrel's own minimum rate (240 B/s).
        using var stop = new CancellationTokenSource();
        var sockets = new List<Socket>();
        for (var i = 0; i < SlowConnections; i++)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(server.Address.Host, server.Address.Port);
            await socket.SendAsync(Encoding.ASCII.GetBytes(
                $"POST /v1/streams/ecommerce/events HTTP/1.1\r\nHost: {server.Address.Authority}\r\nAuthorization: Bearer {slowToken}\r\n" +
                $"Content-Type: application/json\r\nContent-Length: {Declared.ToString(CultureInfo.InvariantCulture)}\r\n\r\n["));
            sockets.Add(socket);
        }

        var answers = sockets.Select(s => ReadAnswerAsync(s)).ToList();
        var trickles = sockets.Select(s => TrickleAsync(s, stop.Token)).ToList();
        try
        {
            // The server has taken at least two of the slow bodies (today's share) before the other tenant comes.
            var held = await WaitAsync(async () => await InflightAsync(server) is var b and >= 2L * Declared ? b : (long?)null, TimeSpan.FromSeconds(10));
            held.ShouldNotBeNull("the slow connections never reserved memory");

            // The other tenant's event gets its 202 within a few seconds of starting (before the change: 429 until the
            // slow connections closed, which a 400 B/s trickle of 32 MB would take a day to do).
            var accepted = await WaitAsync(async () =>
            {
                using var response = await server.PostAsync(otherToken, Event("fair-1", "other"));
                return response.StatusCode == HttpStatusCode.Accepted ? true : (bool?)null;
            }, TimeSpan.FromSeconds(5));
            accepted.ShouldBe(true, "tenant 'other' was kept out by tenant 'slow'");
            (await server.WaitForCountAsync("SELECT count(*) FROM analytics.events WHERE tenant_id = 'other'", 1)).ShouldBe(1);

            // Every slow connection ends: refused at once for going past the tenant's share (429), or cut by the data
            // rate rule (408) once the grace is over; none is still holding memory.
            var codes = new List<int>();
            foreach (var answer in answers)
            {
                codes.Add(await answer.WaitAsync(TimeSpan.FromSeconds(30)));
            }

            codes.Count(c => c == 429).ShouldBeGreaterThan(0, string.Join(", ", codes));
            codes.Count(c => c == 408).ShouldBeGreaterThan(0, string.Join(", ", codes));
            codes.ShouldAllBe(c => c == 429 || c == 408, string.Join(", ", codes));
            (await WaitAsync(async () => await InflightAsync(server) == 0 ? true : (bool?)null, TimeSpan.FromSeconds(10))).ShouldBe(true);
            (await server.Client.GetStringAsync("/metrics")).ShouldContain("sluice_ingest_requests_total{stream=\"ecommerce\",code=\"408\"}");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(trickles);
            foreach (var s in sockets) { s.Dispose(); }
        }
    }

    private static string Event(string id, string tenant) =>
        "{\"event_id\":\"" + id + "\",\"tenant_id\":\"" + tenant + "\",\"schema_version\":1,\"event_type\":\"page_view\",\"event_ts\":\"2025-11-08T10:00:00Z\",\"customer\":{\"id\":\"c1\"}}";

    /// <summary>40 bytes every 100 ms (400 B/s) until the server closes the connection or the test ends.</summary>
    private static async Task TrickleAsync(Socket socket, CancellationToken ct)
    {
        var chunk = Encoding.ASCII.GetBytes(new string(' ', 40));
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await socket.SendAsync(chunk, SocketFlags.None, ct);
                await Task.Delay(100, ct);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The server cut the connection, or the test is over.
        }
    }

    /// <summary>The status code of the first answer on the connection; 0 when it closed without one.</summary>
    private static async Task<int> ReadAnswerAsync(Socket socket)
    {
        var buffer = new byte[4096];
        var text = new StringBuilder();
        try
        {
            while (text.Length < 12)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0) { break; }
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (SocketException)
        {
            // Reset by the server.
        }

        var line = text.ToString();
        return line.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) && line.Length >= 12 ? int.Parse(line.AsSpan(9, 3), CultureInfo.InvariantCulture) : 0;
    }

    private static async Task<long> InflightAsync(TenantAnalyticsServer server)
    {
        var metrics = await server.Client.GetStringAsync("/metrics");
        var line = metrics.Split('\n').First(l => l.StartsWith("sluice_ingest_inflight_bytes{", StringComparison.Ordinal));
        return long.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    private static async Task<T?> WaitAsync<T>(Func<Task<T?>> probe, TimeSpan timeout)
        where T : struct
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await probe() is { } value) { return value; }
            if (DateTime.UtcNow > deadline) { return null; }
            await Task.Delay(50);
        }
    }
}
