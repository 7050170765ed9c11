using System.Globalization;
using Sluice.Core;
using Sluice.Core.Metadata;

namespace Sluice.Cluster;

/// <summary>
/// What a worker of a cluster needs (<c>sluice run --cluster</c>): the NATS servers of the JetStream cluster that is
/// the cluster's landing log, and how the log is laid out. Read from <c>SLUICE_CLUSTER_*</c> variables
/// (<c>scripts/services.sh env</c> prints them), checked at start-up.
/// </summary>
/// <param name="NatsUrls">The NATS servers (any of them will do: the client finds the others and fails over).</param>
/// <param name="Partitions">Subjects per stream (<c>sluice.&lt;recipe&gt;.&lt;stream&gt;.&lt;partition&gt;</c>); an event's partition is a hash of its tenant and key.</param>
/// <param name="Replicas">Copies JetStream keeps of each event; an event is acknowledged once a majority has it.</param>
/// <param name="AckWait">How long a worker may hold events without acknowledging them before JetStream hands them to another.</param>
public sealed record ClusterOptions(IReadOnlyList<string> NatsUrls, int Partitions, int Replicas, TimeSpan AckWait)
{
    public const string NatsVariable = "SLUICE_CLUSTER_NATS";
    public const string PartitionsVariable = "SLUICE_CLUSTER_PARTITIONS";
    public const string ReplicasVariable = "SLUICE_CLUSTER_REPLICAS";
    public const string AckWaitVariable = "SLUICE_CLUSTER_ACK_WAIT";
    public const string OrderVariable = "SLUICE_CLUSTER_ORDER";
    public const string CdcVariable = "SLUICE_CLUSTER_CDC";
    public const string MaxAckPendingVariable = "SLUICE_CLUSTER_MAX_ACK_PENDING";
    public const string MaxPendingVariable = "SLUICE_CLUSTER_MAX_PENDING";

    /// <summary>
    /// The cluster's name (<c>SLUICE_CLUSTER_NAME</c>, default <c>default</c>, checked as the shared store checks it):
    /// part of every JetStream stream, subject and consumer name, so two clusters running one recipe on the same NATS
    /// servers have logs of their own (<see cref="Connectors.Nats.JetStreamLog"/>).
    /// </summary>
    public string Name { get; init; } = "default";

    /// <summary>
    /// Events the workers together may hold delivered and unacknowledged on a stream's shared consumer
    /// (<c>SLUICE_CLUSTER_MAX_ACK_PENDING</c>, <c>max_ack_pending:</c>; default 50,000): more wait in JetStream. Enough
    /// for every worker's batches in flight (a batch waits for its sinks holding its events); a lower bound keeps a
    /// worker that stalls from holding more than that until its ack wait runs out.
    /// </summary>
    public int MaxAckPending { get; init; } = DefaultMaxAckPending;

    public const int DefaultMaxAckPending = 50_000;

    /// <summary>
    /// Messages an HTTP stream's JetStream log may hold not yet acknowledged (delivered or not) before the workers refuse
    /// new requests with 503 and Retry-After, as one process does past <c>max_backlog_bytes</c>
    /// (<c>SLUICE_CLUSTER_MAX_PENDING</c>, <c>max_pending:</c>; default 100,000): a cluster offered more than it processes
    /// degrades by refusing, not by a backlog that grows until the stream's byte bound. Read from the worker's cached
    /// lag (every 2 s), so it may be passed by what two seconds accept.
    /// </summary>
    public int MaxPending { get; init; } = DefaultMaxPending;

    public const int DefaultMaxPending = 100_000;

    /// <summary>Bounds of <see cref="MaxPending"/>: a test's tiny bound to what JetStream keeps on disk for a stream.</summary>
    public const int MinMaxPending = 10, MaxMaxPending = 100_000_000;

    /// <summary>Whether <see cref="CdcVariable"/> (as <paramref name="variable"/> reads it) asks for the holder to run CDC pipelines whole.</summary>
    public static bool CdcByHolder(Func<string, string?> variable) => (variable ?? throw new ArgumentNullException(nameof(variable)))(CdcVariable) == "holder";

    /// <summary>
    /// <c>SLUICE_CLUSTER_CDC=jetstream</c> (the default): a <c>postgres_cdc</c> pipeline's slot holder publishes the
    /// changes to JetStream and every worker runs the steps and sinks, reading the stream's partitions one worker at a
    /// time so that one key's changes keep their order (docs/SCALING.md, "CDC through JetStream");
    /// <c>holder</c>: the slot's holder runs the whole pipeline and the others stand by.
    /// </summary>
    public bool CdcThroughJetStream { get; init; } = true;

    /// <summary>
    /// <c>SLUICE_CLUSTER_ORDER=key</c> (the default): with the shared metadata store, each partition is leased to one
    /// worker at a time, so the events of one key are processed in order (docs/SCALING.md, "Ordering and partitioning").
    /// <c>any</c>: every worker reads one shared consumer, for pipelines whose sinks need no order and whose keys are so
    /// skewed that a few hot partitions would leave workers idle. Without the shared store there are no leases, and
    /// every worker reads the shared consumer whatever this says (a CDC stream's partitions are leased whatever it says).
    /// </summary>
    public bool KeyOrder { get; init; } = true;

    /// <summary>The settings from the environment; a missing or wrong one throws a <see cref="SluiceException"/> naming the variable and what to set.</summary>
    public static ClusterOptions FromEnvironment(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        var urls = (variable(NatsVariable) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (urls.Length == 0)
        {
            throw new SluiceException($"cluster: {NatsVariable} is not set: name the NATS servers of the JetStream cluster, comma-separated (nats://127.0.0.1:4222,...); eval \"$(scripts/services.sh env)\" sets it for the local one");
        }

        foreach (var url in urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("nats" or "tls") || uri.Port <= 0)
            {
                throw new SluiceException($"cluster: {NatsVariable}: '{url}' is not a NATS server address (nats://host:port)");
            }
        }

        var order = variable(OrderVariable);
        if (order is { Length: > 0 } and not ("any" or "key"))
        {
            throw new SluiceException($"cluster: {OrderVariable}: '{order}' is not an order: key (default: a partition's events are read by one worker at a time, in order) or any (every worker reads every partition, no order)");
        }

        var cdc = variable(CdcVariable);
        if (cdc is { Length: > 0 } and not ("holder" or "jetstream"))
        {
            throw new SluiceException($"cluster: {CdcVariable}: '{cdc}' is not a way to run CDC: jetstream (default: the slot's holder publishes the changes to JetStream and every worker runs the steps and sinks) or holder (the slot's holder runs the whole pipeline)");
        }

        var name = variable(SharedMetadata.NameVariable) is { Length: > 0 } named ? named : "default";
        if (!SharedMetadata.IsClusterName(name))
        {
            throw new SluiceException($"cluster: {SharedMetadata.NameVariable}: '{name}' is not a cluster name: 1-40 lower-case letters, digits or '_', starting with a letter");
        }

        return new ClusterOptions(urls, Number(variable, PartitionsVariable, 16, 1, 1024), Number(variable, ReplicasVariable, 3, 1, 5),
            TimeSpan.FromSeconds(Number(variable, AckWaitVariable, 30, 1, 3600)))
        {
            KeyOrder = order != "any",
            CdcThroughJetStream = !CdcByHolder(variable),
            Name = name,
            MaxAckPending = Number(variable, MaxAckPendingVariable, DefaultMaxAckPending, MinMaxAckPending, MaxMaxAckPending),
            MaxPending = Number(variable, MaxPendingVariable, DefaultMaxPending, MinMaxPending, MaxMaxPending),
        };
    }

    /// <summary>Bounds of <see cref="MaxAckPending"/>: below 100 a batch of a few workers would wait on JetStream; above a million JetStream keeps too much per consumer in memory.</summary>
    public const int MinMaxAckPending = 100, MaxMaxAckPending = 1_000_000;

    private static int Number(Func<string, string?> variable, string name, int fallback, int min, int max)
    {
        var text = variable(name);
        if (string.IsNullOrWhiteSpace(text)) { return fallback; }
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new SluiceException($"cluster: {name}: '{text}' is not a whole number from {min} to {max}");
        }

        return value;
    }
}
