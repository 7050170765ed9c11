using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Sluice.Core;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>A fresh metadata store for one test, of one provider; a second instance of it stands for another process.</summary>
public abstract class MetadataFixture : IDisposable
{
    private MetadataStore? _store;

    /// <summary>The clock of every store the test builds, set by hand.</summary>
    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    public MetadataStore Store => _store ??= OpenStore("a");

    /// <summary>Another store instance on the same data, with connections of its own (a second worker).</summary>
    public abstract MetadataStore OpenStore(string worker);

    public abstract void Dispose();
}

/// <summary>A data folder's <c>meta.db</c> in a temporary folder.</summary>
public sealed class SqliteMetadataFixture : MetadataFixture
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sluice-meta-" + Guid.NewGuid().ToString("N")[..8]);

    public override MetadataStore OpenStore(string worker) => new(new DataDirectory(_root));

    public override void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root)) { Directory.Delete(_root, recursive: true); }
    }
}

/// <summary>A cluster's shared store on the test server, in a schema of its own (<c>sluice_meta_t&lt;random&gt;</c>), dropped after.</summary>
public sealed class PostgresMetadataFixture : MetadataFixture
{
    public string Cluster { get; } = "t" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>The settings of one worker: its own application name, so its connections come from a pool of their own.</summary>
    public SharedMetadata Shared(string worker) =>
        SharedMetadata.Parse(new NpgsqlConnectionStringBuilder(ServerSettings.PostgresConnectionString) { ApplicationName = "sluice-test-" + worker }.ConnectionString, Cluster);

    public override MetadataStore OpenStore(string worker) => MetadataStore.For(new DataDirectory(Path.GetTempPath()), Shared(worker));

    public override void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        using var c = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
        c.Open();
        using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS sluice_meta_{Cluster} CASCADE", c);
        drop.ExecuteNonQuery();
    }
}
