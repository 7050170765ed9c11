using Npgsql;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// What the files tests of <c>run --cluster</c> workers share: a cluster of their own (its metadata schema dropped
/// after), the shared folder that holds the drop folders, the workers' environment and data folders, and the ledger of
/// ingested files in the shared store.
/// </summary>
internal sealed class SharedDropCluster : IAsyncDisposable
{
    public SharedDropCluster(TempFolder temp, int workers)
    {
        ArgumentNullException.ThrowIfNull(temp);
        Shared = Directory.CreateDirectory(temp.Sub("shared")).FullName;
        // Files need no NATS; the worker only checks that servers are named.
        Env = ClusterEnvironment.Of(Name, new Dictionary<string, string>
        {
            ["SLUICE_CLUSTER_FOLDER"] = Shared,
            ["SLUICE_CLUSTER_ACK_WAIT"] = "4", // the claims' lease
        });
        Workers = Enumerable.Range(0, workers).Select(i => Directory.CreateDirectory(temp.Sub($"worker{i}")).FullName).ToArray();
    }

    public string Name { get; } = "f" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>The folder every worker sees (<c>SLUICE_CLUSTER_FOLDER</c>).</summary>
    public string Shared { get; }

    public IDictionary<string, string> Env { get; }

    /// <summary>Each worker's data folder.</summary>
    public string[] Workers { get; }

    /// <summary>A worker's environment with one more variable (a crash point).</summary>
    public Dictionary<string, string> EnvWith(string name, string value) => new(Env) { [name] = value };

    /// <summary>The files in the shared ledger, by name, with their rows.</summary>
    public async Task<List<(string File, long Rows)>> LedgerAsync()
    {
        await using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT file_name, rows FROM sluice_meta_{Name}.ingested_files ORDER BY file_name COLLATE \"C\"", c);
        try
        {
            await using var r = await cmd.ExecuteReaderAsync();
            var list = new List<(string, long)>();
            while (await r.ReadAsync()) { list.Add((r.GetString(0), r.GetInt64(1))); }
            return list;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return [];
        }
    }

    /// <summary>A job run in the shared store.</summary>
    public sealed record JobRun(long Id, DateTimeOffset AsOf, string Trigger, string Status, long Pid);

    /// <summary>The runs of <paramref name="job"/> (<c>recipe/job</c>) in the shared store matching <paramref name="where"/>, oldest first (none before its tables exist).</summary>
    public async Task<List<JobRun>> RunsAsync(string job, string where)
    {
        await using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT id, as_of, trigger, status, pid FROM sluice_meta_{Name}.job_runs WHERE job = '{job}' AND ({where}) ORDER BY id", c);
        try
        {
            await using var r = await cmd.ExecuteReaderAsync();
            var runs = new List<JobRun>();
            while (await r.ReadAsync())
            {
                runs.Add(new JobRun(r.GetInt64(0), DateTimeOffset.Parse(r.GetString(1), System.Globalization.CultureInfo.InvariantCulture), r.GetString(2), r.GetString(3), r.GetInt64(4)));
            }

            return runs;
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            return [];
        }
    }

    /// <summary>Waits up to <paramref name="seconds"/> (120 by default: workers on a loaded machine) for <paramref name="condition"/>, failing with <paramref name="what"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, Func<string> what, int seconds = 120)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) { Assert.Fail($"not within {seconds} s: {what()}"); }
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        await c.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{Name} CASCADE", c);
        await drop.ExecuteNonQueryAsync();
    }
}
