using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Sluice.Connectors.Postgres;
using Sluice.IntegrationTests.EngagementCdc;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Chaos;

/// <summary>
/// A PostgreSQL server of the test's own (the binaries scripts/services.sh uses), set up for logical replication, with
/// user <c>sluice</c> trusted on 127.0.0.1: a test may SIGKILL it mid-stream and start it again on the same port and
/// data (crash recovery, slots as of the last checkpoint), which the shared server must never be. As root (CI) it
/// runs as the <c>postgres</c> user that scripts/services.sh creates, since PostgreSQL refuses to run as root.
/// </summary>
internal sealed class ThrowawayPostgres(params string[] settings) : ThrowawayServer("sluice-pg")
{
    private static readonly bool IsRoot = Environment.UserName == "root";

    /// <summary>More server settings (<c>name=value</c>), e.g. a small <c>max_slot_wal_keep_size</c>.</summary>
    private readonly string[] _settings = settings;

    public PostgresConnectionOptions Options => new() { Host = "127.0.0.1", Port = Port, User = "sluice", Database = "postgres" };

    public string ConnectionString(string database = "postgres") => Options.WithDatabase(database).ConnectionString("sluice-test");

    /// <summary>The <c>connection:</c> block of a recipe component that points at this server.</summary>
    public string RecipeConnection(string database) => $"{{ host: 127.0.0.1, port: {Port.ToString(CultureInfo.InvariantCulture)}, user: sluice, database: \"{database}\" }}";

    private string DataDir => Path.Combine(Folder, "data");

    protected override ProcessStartInfo StartInfo()
    {
        if (!File.Exists(Path.Combine(DataDir, "PG_VERSION")))
        {
            Directory.CreateDirectory(Path.Combine(Folder, "run"));
            if (IsRoot) { Run("chown", "-R", "postgres:postgres", Folder); }
            Run(AsServerUser(Bin("initdb"), "-D", DataDir, "-U", "sluice", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"));
        }

        string[] args = ["-D", DataDir, "-c", $"port={Port}", "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={Path.Combine(Folder, "run")}",
            "-c", "wal_level=logical", "-c", "max_replication_slots=10", "-c", "max_wal_senders=10", "-c", "shared_buffers=16MB", "-c", "max_connections=50"];
        return AsServerUser(Bin("postgres"), [.. args, .. _settings.SelectMany(s => new[] { "-c", s })]);
    }

    protected override async Task<bool> ReadyAsync()
    {
        try
        {
            await using var connection = new NpgsqlConnection(ConnectionString() + ";Timeout=2;Pooling=false");
            await connection.OpenAsync();
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return false;
        }
    }

    public async Task CreateDatabaseAsync(string name)
    {
        await using var connection = new NpgsqlConnection(ConnectionString() + ";Pooling=false");
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync();
    }

    private static ProcessStartInfo AsServerUser(string file, params string[] args)
    {
        var info = IsRoot ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", file]) : new ProcessStartInfo(file);
        foreach (var a in args) { info.ArgumentList.Add(a); }
        return info;
    }

    private static string Bin(string name)
    {
        foreach (var dir in new[] { Environment.GetEnvironmentVariable("SLUICE_PG_BIN"), "/usr/lib/postgresql/15/bin" })
        {
            if (!string.IsNullOrEmpty(dir) && File.Exists(Path.Combine(dir, name))) { return Path.Combine(dir, name); }
        }

        return name; // on PATH, as scripts/services.sh falls back to
    }

    private static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file);
        foreach (var a in args) { info.ArgumentList.Add(a); }
        Run(info);
    }

    private static void Run(ProcessStartInfo info)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        using var p = Process.Start(info)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) { throw new InvalidOperationException($"{info.FileName} {string.Join(' ', info.ArgumentList)} failed ({p.ExitCode}): {output.Result}{error}"); }
    }
}
