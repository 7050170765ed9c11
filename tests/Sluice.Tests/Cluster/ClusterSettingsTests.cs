using Sluice.Cluster;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;

namespace Sluice.Tests.Cluster;

/// <summary>A recipe's <c>cluster:</c> section: checked at load naming the key, and the <c>SLUICE_CLUSTER_*</c> variables win over it.</summary>
public sealed class ClusterSettingsTests
{
    [Fact]
    public void The_section_gives_the_settings_and_a_variable_that_is_set_wins()
    {
        var (settings, errors) = Parse("""
            cluster:
              nats: [nats://10.0.0.1:4222, nats://10.0.0.2:4222]
              postgres: postgres://sluice:secret@10.0.0.9:5432/meta
              name: shop
              partitions: 8
              replicas: 3
              ack_wait: 45s
              order: any
              max_ack_pending: 8000
              max_pending: 3000
            """);
        errors.ShouldBeEmpty();
        var fromSection = settings!.Over(_ => null);
        var options = ClusterOptions.FromEnvironment(fromSection);
        options.NatsUrls.ShouldBe(["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]);
        options.Partitions.ShouldBe(8);
        options.AckWait.ShouldBe(TimeSpan.FromSeconds(45));
        options.KeyOrder.ShouldBeFalse("order: any");
        (options.Name, options.MaxAckPending, options.MaxPending).ShouldBe(("shop", 8000, 3000), "the cluster's name is in its JetStream names too");
        SharedMetadata.FromVariables(fromSection)!.Schema.ShouldBe("sluice_meta_shop");

        var overridden = settings.Over(name => name switch
        {
            "SLUICE_CLUSTER_PARTITIONS" => "32",
            "SLUICE_CLUSTER_NAME" => "staging",
            "SLUICE_CLUSTER_NATS" => "",
            "SLUICE_CLUSTER_ORDER" => "key",
            _ => null,
        });
        ClusterOptions.FromEnvironment(overridden).Partitions.ShouldBe(32, "the variable wins over the section");
        ClusterOptions.FromEnvironment(overridden).KeyOrder.ShouldBeTrue();
        ClusterOptions.FromEnvironment(overridden).NatsUrls.Count.ShouldBe(2, "an empty variable counts as unset");
        SharedMetadata.FromVariables(overridden)!.Schema.ShouldBe("sluice_meta_staging");
    }

    [Fact]
    public void A_section_without_order_gives_per_key_order_and_the_variable_can_choose_any()
    {
        // The section hands its order to the variables whenever the variable is unset, so its default is the one in effect.
        var (settings, errors) = Parse("""
            cluster:
              nats: [nats://10.0.0.1:4222]
            """);
        errors.ShouldBeEmpty();
        settings!.Order.ShouldBe(ClusterOrder.Key);
        ClusterOptions.FromEnvironment(settings.Over(_ => null)).KeyOrder.ShouldBeTrue("per-key order is the default");
        ClusterOptions.FromEnvironment(settings.Over(name => name == "SLUICE_CLUSTER_ORDER" ? "any" : null)).KeyOrder.ShouldBeFalse("any stays selectable");
    }

    [Fact]
    public void Each_wrong_key_is_an_error_naming_it_and_its_line()
    {
        var (_, errors) = Parse("""
            cluster:
              nats: [10.0.0.1:4222]
              postgres: "postgres:///nohost"
              name: Not-A-Name
              partitions: 0
              ack_wait: 500ms
              replica: 3
              order: sorted
              max_ack_pending: 5
              max_pending: 0
            """);
        errors.ShouldContain(e => e.Contains("cluster.max_ack_pending") && e.Contains("must be between 100 and 1000000"), string.Join("\n", errors));
        errors.ShouldContain(e => e.Contains("cluster.max_pending") && e.Contains("must be between 10 and 100000000"), string.Join("\n", errors));
        errors.ShouldContain(e => e.StartsWith("recipe.yaml:2: cluster.nats: ", StringComparison.Ordinal) && e.Contains("'10.0.0.1:4222' is not a NATS server address"), string.Join("\n", errors));
        errors.ShouldContain(e => e.Contains("cluster.name") && e.Contains("'Not-A-Name' is not a cluster name"), string.Join("\n", errors));
        errors.ShouldContain(e => e.Contains("cluster.partitions") && e.Contains("must be between 1 and 1024"), string.Join("\n", errors));
        errors.ShouldContain(e => e.Contains("cluster.ack_wait") && e.Contains("whole seconds from 1s to 1h"), string.Join("\n", errors));
        errors.ShouldContain(e => e.Contains("cluster.replica") && e.Contains("did you mean 'replicas'"), string.Join("\n", errors));
        errors.ShouldContain(e => e.Contains("cluster.order") && e.Contains("expected one of key, any"), string.Join("\n", errors));
    }

    [Fact]
    public void A_postgres_setting_without_a_host_is_an_error_on_its_key()
    {
        var (_, errors) = Parse("""
            cluster:
              postgres: "postgres:///meta"
            """);
        errors.ShouldHaveSingleItem().ShouldContain("cluster.postgres");
        errors[0].ShouldContain("names no host");
    }

    [Fact]
    public void A_worker_id_is_the_variable_or_the_host_and_data_folder_and_stays_the_same()
    {
        var a = new DataDirectory(Path.Combine(Path.GetTempPath(), "w-a"));
        var b = new DataDirectory(Path.Combine(Path.GetTempPath(), "w-b"));
        WorkerIdentity.Of(a, _ => null).ShouldBe(WorkerIdentity.Of(new DataDirectory(a.Root), _ => null), "the same folder is the same worker after a restart");
        WorkerIdentity.Of(a, _ => null).ShouldNotBe(WorkerIdentity.Of(b, _ => null), "two folders on one machine are two workers");
        WorkerIdentity.Of(a, n => n == "SLUICE_WORKER_ID" ? "eu-1" : null).ShouldBe("eu-1");
        Should.Throw<SluiceException>(() => WorkerIdentity.Of(a, _ => "no spaces")).Message.ShouldStartWith("SLUICE_WORKER_ID: 'no spaces' is not a worker id");
    }

    private static (ClusterSettings? Settings, List<string> Errors) Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse(yaml, "recipe.yaml", errors)!;
        var settings = ClusterSettings.Parse(map.Map("cluster")!);
        return (settings, errors.All.Select(e => e.ToString()).ToList());
    }
}
