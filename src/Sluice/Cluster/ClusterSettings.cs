using System.Globalization;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;

namespace Sluice.Cluster;

/// <summary>
/// A recipe's <c>cluster:</c> section: the settings of <c>run --cluster</c> written beside the recipe instead of (or
/// under) the <c>SLUICE_CLUSTER_*</c> variables. A variable that is set wins over the section, so one recipe file serves
/// every environment. Checked when the recipe loads, each problem naming its key.
/// </summary>
public sealed record ClusterSettings(IReadOnlyList<string> Nats, string? Postgres, string? Name, int Partitions, int Replicas, TimeSpan AckWait, ClusterOrder Order)
{
    /// <summary><c>max_ack_pending:</c> (<see cref="ClusterOptions.MaxAckPending"/>).</summary>
    public int MaxAckPending { get; init; } = ClusterOptions.DefaultMaxAckPending;

    /// <summary><c>max_pending:</c> (<see cref="ClusterOptions.MaxPending"/>).</summary>
    public int MaxPending { get; init; } = ClusterOptions.DefaultMaxPending;

    public static ClusterSettings Parse(ConfigMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        var nats = map.StringList("nats", doc: $"The NATS servers of the JetStream cluster, nats://host:port each (any one finds the others); {ClusterOptions.NatsVariable} wins over it");
        var postgres = map.String("postgres", doc: $"The shared metadata store: an Npgsql connection string or postgres://user:password@host:port/database; {SharedMetadata.PostgresVariable} wins over it");
        var name = map.String("name", "default", doc: $"The cluster's name: its metadata is schema sluice_meta_<name>; {SharedMetadata.NameVariable} wins over it");
        var partitions = map.Int("partitions", 16, 1, 1024, doc: $"Subjects per JetStream stream (an event's partition is a hash of its tenant and key); {ClusterOptions.PartitionsVariable} wins over it");
        var replicas = map.Int("replicas", 3, 1, 5, doc: $"Copies JetStream keeps of each event, at most the number of nodes; {ClusterOptions.ReplicasVariable} wins over it");
        var ackWait = map.Duration("ack_wait", TimeSpan.FromSeconds(30), doc: $"How long a worker may hold events unacknowledged before JetStream hands them to another (1s to 1h; a worker whose sinks are still committing them keeps them up to four ack waits); {ClusterOptions.AckWaitVariable} (seconds) wins over it");
        var order = map.Enum("order", ClusterOrder.Key, doc: $"key: with the shared metadata store, each partition is leased to one worker at a time, so one key's events are processed in their order (mirrors, latest-per-key tables); any: every worker reads one shared consumer, no order between workers (event rows keyed by their id, keys so skewed that a few hot partitions would leave workers idle); {ClusterOptions.OrderVariable} wins over it");
        var maxAckPending = map.Int("max_ack_pending", ClusterOptions.DefaultMaxAckPending, ClusterOptions.MinMaxAckPending, ClusterOptions.MaxMaxAckPending,
            doc: $"Messages (an HTTP request's events of one partition each; a CDC change each) the workers together may hold delivered and not yet acknowledged on a stream's shared consumer (order: any); more wait in JetStream. Enough for every worker's batches waiting for their sinks; lower keeps a stalled worker from holding more until its ack wait runs out; {ClusterOptions.MaxAckPendingVariable} wins over it");
        var maxPending = map.Int("max_pending", ClusterOptions.DefaultMaxPending, ClusterOptions.MinMaxPending, ClusterOptions.MaxMaxPending,
            doc: $"Messages (an HTTP request's events of one partition each) an HTTP stream's JetStream log may hold not yet acknowledged before the workers refuse new requests with 503 and Retry-After until it drains: a cluster offered more than it processes refuses instead of growing a backlog; {ClusterOptions.MaxPendingVariable} wins over it");
        foreach (var url in nats.Where(u => !Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls") || uri.Port <= 0))
        {
            map.Error("nats", $"'{url}' is not a NATS server address (nats://host:port)");
        }

        if (ackWait < TimeSpan.FromSeconds(1) || ackWait > TimeSpan.FromHours(1) || ackWait.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            map.Error("ack_wait", $"must be whole seconds from 1s to 1h, got {OptionDoc.FormatDuration(ackWait)}");
        }

        try
        {
            // Checks both; without a postgres value (the variable gives it) only the name.
            SharedMetadata.Parse(postgres is { Length: > 0 } ? postgres : "Host=localhost", name ?? "default");
        }
        catch (SluiceException e)
        {
            map.Error(e.Message.StartsWith(SharedMetadata.NameVariable, StringComparison.Ordinal) ? "name" : "postgres",
                e.Message[(e.Message.IndexOf(": ", StringComparison.Ordinal) + 2)..]);
        }

        map.Done();
        return new ClusterSettings(nats, postgres, name, partitions, replicas, ackWait, order) { MaxAckPending = maxAckPending, MaxPending = maxPending };
    }

    /// <summary>The <c>SLUICE_CLUSTER_*</c> variables of <paramref name="environment"/>, each falling back to this section's value when unset.</summary>
    public Func<string, string?> Over(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return name => environment(name) is { Length: > 0 } set ? set : Value(name);
    }

    /// <summary>The variables of the environment over <paramref name="recipe"/>'s <c>cluster:</c> section (the environment alone when it has none).</summary>
    public static Func<string, string?> Variables(Recipe recipe, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        return recipe.Sections.GetValueOrDefault(ClusterSection.SectionName) is ClusterSettings settings ? settings.Over(environment) : environment;
    }

    private string? Value(string variable) => variable switch
    {
        ClusterOptions.NatsVariable => Nats.Count > 0 ? string.Join(',', Nats) : null,
        SharedMetadata.PostgresVariable => Postgres,
        SharedMetadata.NameVariable => Name,
        ClusterOptions.PartitionsVariable => Partitions.ToString(CultureInfo.InvariantCulture),
        ClusterOptions.ReplicasVariable => Replicas.ToString(CultureInfo.InvariantCulture),
        ClusterOptions.AckWaitVariable => ((long)AckWait.TotalSeconds).ToString(CultureInfo.InvariantCulture),
        ClusterOptions.OrderVariable => Order == ClusterOrder.Any ? "any" : "key",
        ClusterOptions.MaxAckPendingVariable => MaxAckPending.ToString(CultureInfo.InvariantCulture),
        ClusterOptions.MaxPendingVariable => MaxPending.ToString(CultureInfo.InvariantCulture),
        _ => null,
    };
}

/// <summary>How a partitioned stream's events are read across workers (<c>order:</c>, <see cref="ClusterOptions.KeyOrder"/>).</summary>
public enum ClusterOrder
{
    /// <summary>A partition is read by the one worker leasing it: one key's events in their order.</summary>
    Key,

    /// <summary>Every worker reads one shared consumer: no order between workers.</summary>
    Any,
}

/// <summary>The recipe section <c>cluster:</c>, registered with the loader (<see cref="Components"/>).</summary>
public sealed class ClusterSection : IRecipeSection
{
    public const string SectionName = "cluster";

    public string Name => SectionName;

    public string Doc => "Cluster mode's settings (`sluice run --cluster`): the NATS servers, the shared metadata store, partitions, replicas, ack wait, order; a set `SLUICE_CLUSTER_*` variable wins over its key (docs/SCALING.md).";

    public object? Parse(ConfigMap? map, RecipeContext recipe, IReadOnlyList<PipelineDefinition> pipelines, IReadOnlyList<JobDefinition> jobs, IReadOnlyCollection<string> tables) =>
        map is null ? null : ClusterSettings.Parse(map);
}
