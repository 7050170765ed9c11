using System.Globalization;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>The environment of the cluster tests' <c>sluice run --cluster</c> workers and commands.</summary>
internal static class ClusterEnvironment
{
    /// <summary>The services' NATS servers: <c>SLUICE_CLUSTER_NATS</c> of the tests' environment, or scripts/services.sh's default.</summary>
    public static string ServicesNats => Environment.GetEnvironmentVariable("SLUICE_CLUSTER_NATS") is { Length: > 0 } nats ? nats : "nats://127.0.0.1:4222";

    /// <summary>
    /// A worker of cluster <paramref name="cluster"/>: its shared metadata store in the services' PostgreSQL, the
    /// services' NATS (named even for a recipe that publishes nothing: cluster mode wants them), and <paramref name="more"/>.
    /// </summary>
    public static Dictionary<string, string> Of(string cluster, IDictionary<string, string>? more = null)
    {
        var env = new Dictionary<string, string>
        {
            [SharedMetadata.PostgresVariable] = ServerSettings.PostgresConnectionString, [SharedMetadata.NameVariable] = cluster,
            ["SLUICE_CLUSTER_NATS"] = ServicesNats,
        };
        foreach (var (k, v) in more ?? new Dictionary<string, string>()) { env[k] = v; }
        return env;
    }

    /// <summary>
    /// A CDC worker of cluster <paramref name="cluster"/>: <see cref="Of"/> over its scenario's variables, reading through
    /// <paramref name="nats"/> (a test's own JetStream cluster, so that no other run's changes in the services' stream are
    /// read; the services' when null) in <paramref name="cdc"/> mode (<c>jetstream</c> or <c>holder</c>; unset: the default).
    /// </summary>
    public static Dictionary<string, string> Cdc(string cluster, IDictionary<string, string> scenario, NatsTestCluster? nats, string? cdc)
    {
        var env = Of(cluster, scenario);
        if (nats is not null) { env["SLUICE_CLUSTER_NATS"] = nats.Urls; }
        if (cdc is not null) { env["SLUICE_CLUSTER_CDC"] = cdc; }
        return env;
    }

    /// <summary>The <c>PG*</c> variables for database <paramref name="database"/> of the services' PostgreSQL (a recipe's postgres source or sink that names no connection).</summary>
    public static Dictionary<string, string> Postgres(string database) => new()
    {
        ["PGHOST"] = ServerSettings.PgHost, ["PGPORT"] = ServerSettings.PgPort.ToString(CultureInfo.InvariantCulture),
        ["PGUSER"] = ServerSettings.PgUser, ["PGPASSWORD"] = ServerSettings.PgPassword, ["PGDATABASE"] = database,
    };
}
