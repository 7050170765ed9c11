using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.EngagementCdc;

/// <summary>
/// A server of the test's own, on free ports, that the test may stop and start (the shared servers are never
/// stopped). Same binaries as scripts/services.sh installs.
/// </summary>
internal abstract class ThrowawayServer : IAsyncDisposable
{
    private readonly TempFolder _folder;
    private Process? _process;

    protected ThrowawayServer(string label)
    {
        _folder = new TempFolder(label);
        Port = Support.FreePort.Next();
    }

    public int Port { get; }

    protected string Folder => _folder.Path;

    protected abstract ProcessStartInfo StartInfo();

    protected abstract Task<bool> ReadyAsync();

    public async Task StartAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var info = StartInfo();
            info.RedirectStandardOutput = true;
            info.RedirectStandardError = true;
            info.UseShellExecute = false;
            var error = new System.Text.StringBuilder();
            _process = Process.Start(info)!;
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (error) { error.AppendLine(e.Data); } } };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            while (!await ReadyAsync())
            {
                if (DateTime.UtcNow > deadline) { throw new TimeoutException($"{info.FileName} not ready within 60 s"); }
                if (_process.HasExited)
                {
                    // Right after a SIGKILL the killed server's last children may still hold its port or shared memory
                    // for a moment: the start is refused, and tried again until the deadline.
                    if (DateTime.UtcNow.AddSeconds(1) > deadline) { lock (error) { throw new InvalidOperationException($"{info.FileName} exited with {_process.ExitCode} at start: {error}"); } }
                    break;
                }

                await Task.Delay(100);
            }

            if (!_process.HasExited) { return; }
            _process.Dispose();
            _process = null;
            await Task.Delay(200);
        }
    }

    /// <summary>SIGKILL: as abrupt as a crash or a pulled cable.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _folder.Dispose();
    }
}

internal sealed class ThrowawayClickHouse() : ThrowawayServer("sluice-ch")
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly int _tcpPort = Support.FreePort.Next();

    public string Url => $"http://127.0.0.1:{Port}";

    protected override ProcessStartInfo StartInfo()
    {
        var config = Path.Combine(Folder, "config.xml");
        if (!File.Exists(config))
        {
            foreach (var d in new[] { "data", "tmp", "user_files", "format_schemas", "log" }) { Directory.CreateDirectory(Path.Combine(Folder, d)); }
            File.WriteAllText(config, $"""
                <?xml version="1.0"?>
                <yandex>
                    <logger><level>warning</level><log>{Folder}/log/server.log</log><errorlog>{Folder}/log/error.log</errorlog></logger>
                    <listen_host>127.0.0.1</listen_host>
                    <http_port>{Port}</http_port>
                    <tcp_port>{_tcpPort}</tcp_port>
                    <max_concurrent_queries>20</max_concurrent_queries>
                    <mark_cache_size>67108864</mark_cache_size>
                    <path>{Folder}/data/</path>
                    <tmp_path>{Folder}/tmp/</tmp_path>
                    <user_files_path>{Folder}/user_files/</user_files_path>
                    <format_schema_path>{Folder}/format_schemas/</format_schema_path>
                    <users_config>users.xml</users_config>
                    <default_profile>default</default_profile>
                    <default_database>default</default_database>
                    <timezone>UTC</timezone>
                    <mlock_executable>false</mlock_executable>
                </yandex>
                """);
            File.WriteAllText(Path.Combine(Folder, "users.xml"), """
                <?xml version="1.0"?>
                <yandex>
                    <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
                    <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
                    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
                </yandex>
                """);
        }

        var bin = File.Exists("/usr/sbin/clickhouse-server") ? "/usr/sbin/clickhouse-server" : "clickhouse-server";
        return new ProcessStartInfo(bin, [$"--config-file={config}"]) { WorkingDirectory = Folder };
    }

    protected override async Task<bool> ReadyAsync()
    {
        try
        {
            return (await Http.GetStringAsync($"{Url}/ping")).Trim() == "Ok.";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }
}

/// <summary>Redis with an append-only file fsynced on every write, so a kill loses nothing it acknowledged.</summary>
internal sealed class ThrowawayRedis() : ThrowawayServer("sluice-redis")
{
    public string Url => $"redis://127.0.0.1:{Port}";

    protected override ProcessStartInfo StartInfo() =>
        new("redis-server", ["--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", Folder,
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]) { WorkingDirectory = Folder };

    protected override async Task<bool> ReadyAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[64];
            var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
            return System.Text.Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException)
        {
            return false;
        }
    }
}
