using System.Text.RegularExpressions;
using Npgsql;

namespace Sluice.Core.Metadata;

/// <summary>
/// Where a cluster keeps its shared metadata: a Postgres database and the cluster's name, whose schema
/// (<c>sluice_meta_&lt;name&gt;</c>) holds the same tables as a data folder's <c>meta.db</c>. Read from
/// <c>SLUICE_CLUSTER_POSTGRES</c> (an Npgsql connection string or a <c>postgres://user:password@host:port/database</c>
/// URL) and <c>SLUICE_CLUSTER_NAME</c> (default <c>default</c>); without them the store stays the data folder's SQLite.
/// </summary>
public sealed partial record SharedMetadata
{
    public const string PostgresVariable = "SLUICE_CLUSTER_POSTGRES";
    public const string NameVariable = "SLUICE_CLUSTER_NAME";
    public const string FolderVariable = "SLUICE_CLUSTER_FOLDER";

    private SharedMetadata(NpgsqlConnectionStringBuilder settings, string cluster)
    {
        Settings = settings;
        Cluster = cluster;
    }

    /// <summary>The server and database, without the schema.</summary>
    public NpgsqlConnectionStringBuilder Settings { get; }

    public string Cluster { get; }

    public string Schema => "sluice_meta_" + Cluster;

    /// <summary>
    /// The folder every worker sees (<c>SLUICE_CLUSTER_FOLDER</c>): the lake's Parquet files under <c>lake/</c> and the
    /// files sources' drop folders. Null when unset: then nothing that keeps files (the lake, drop folders) runs on the shared store.
    /// </summary>
    public string? Folder { get; init; }

    /// <summary>The settings of the environment, or null when <c>SLUICE_CLUSTER_POSTGRES</c> is unset (the single-process store).</summary>
    public static SharedMetadata? FromEnvironment() => FromVariables(Environment.GetEnvironmentVariable);

    /// <summary>The settings of <paramref name="variable"/> (the environment, or the environment over a recipe's <c>cluster:</c> section); null when the Postgres one is unset.</summary>
    public static SharedMetadata? FromVariables(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        return variable(PostgresVariable) is { Length: > 0 } postgres
            ? Parse(postgres, variable(NameVariable) is { Length: > 0 } name ? name : "default") with
            {
                Folder = variable(FolderVariable) is { Length: > 0 } folder ? Path.GetFullPath(folder) : null,
            }
            : null;
    }

    /// <summary>Whether <paramref name="cluster"/> is a cluster's name: 1-40 lower-case letters, digits or '_', starting with a letter (a schema name, and safe in JetStream names).</summary>
    public static bool IsClusterName(string? cluster) => ClusterName().IsMatch(cluster ?? "");

    /// <summary>Checks both values, naming the variable that is wrong and why.</summary>
    public static SharedMetadata Parse(string postgres, string cluster)
    {
        ArgumentNullException.ThrowIfNull(postgres);
        if (!IsClusterName(cluster))
        {
            throw new SluiceException($"{NameVariable}: '{cluster}' is not a cluster name: 1-40 lower-case letters, digits or '_', starting with a letter.");
        }

        NpgsqlConnectionStringBuilder settings;
        try
        {
            settings = postgres.StartsWith("postgres://", StringComparison.Ordinal) || postgres.StartsWith("postgresql://", StringComparison.Ordinal)
                ? FromUrl(new Uri(postgres))
                : new NpgsqlConnectionStringBuilder(postgres);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            throw new SluiceException($"{PostgresVariable}: not a Postgres connection string or postgres:// URL: {e.Message}");
        }

        if (string.IsNullOrEmpty(settings.Host))
        {
            throw new SluiceException($"{PostgresVariable}: names no host (for example postgres://sluice@127.0.0.1:5432/sluice).");
        }

        settings.SearchPath = null;
        return new SharedMetadata(settings, cluster!);
    }

    /// <summary>The connection string of the cluster's schema: every unqualified name of the stores' SQL is found there.</summary>
    public string ConnectionString()
    {
        var builder = new NpgsqlConnectionStringBuilder(Settings.ConnectionString)
        {
            SearchPath = Schema,
            ApplicationName = Settings.ApplicationName ?? "sluice-metadata",
            Timezone = "UTC",
            Pooling = true,
        };
        // A worker paused mid-transaction (SIGSTOP, a frozen VM) would keep its locks for ever: the store-wide write lock
        // every worker's BeginWrite takes, a pull's cursor row while it acknowledges a page. The worker that took its work
        // over then waited until its command timeout (30 s) failed its pipeline (CI: ClusterPullTests' SIGSTOP test). The
        // server ends such a transaction instead; the store's transactions are a few statements with nothing between
        // them, so only a process that is not running sits idle in one this long. Its next statement fails, and the
        // component sees the store's error.
        builder.Options = $"{builder.Options} -c idle_in_transaction_session_timeout={(int)IdleInTransactionTimeout.TotalMilliseconds}".Trim();
        return builder.ConnectionString;
    }

    /// <summary>How long the server lets a transaction on the shared store sit idle before it ends it (see <see cref="ConnectionString"/>).</summary>
    public static readonly TimeSpan IdleInTransactionTimeout = TimeSpan.FromSeconds(10);

    /// <summary><c>postgres://user@host:port/database schema</c>, never the password: for messages.</summary>
    public override string ToString() => $"postgres://{Settings.Username}@{Settings.Host}:{Settings.Port}/{Settings.Database} schema {Schema}";

    private static NpgsqlConnectionStringBuilder FromUrl(Uri url)
    {
        var user = Uri.UnescapeDataString(url.UserInfo);
        var colon = user.IndexOf(':', StringComparison.Ordinal);
        return new NpgsqlConnectionStringBuilder
        {
            Host = url.Host,
            Port = url.IsDefaultPort || url.Port <= 0 ? 5432 : url.Port,
            Username = colon < 0 ? user : user[..colon],
            Password = colon < 0 ? null : user[(colon + 1)..],
            Database = url.AbsolutePath.Trim('/') is { Length: > 0 } db ? db : null,
        };
    }

    [GeneratedRegex("^[a-z][a-z0-9_]{0,39}$")]
    private static partial Regex ClusterName();
}
