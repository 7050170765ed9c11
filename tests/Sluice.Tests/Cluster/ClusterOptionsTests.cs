using Sluice.Cluster;
using Sluice.Core;

namespace Sluice.Tests.Cluster;

public sealed class ClusterOptionsTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] values) =>
        name => values.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void The_nats_servers_come_from_the_variable_with_the_defaults_for_the_rest()
    {
        var options = ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222, nats://127.0.0.1:4223")));
        options.NatsUrls.ShouldBe(["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
        options.Partitions.ShouldBe(16);
        options.Replicas.ShouldBe(3);
        options.AckWait.ShouldBe(TimeSpan.FromSeconds(30));
        options.KeyOrder.ShouldBeTrue("per-key order is the default");
        options.Name.ShouldBe("default");
        options.MaxAckPending.ShouldBe(50_000);
        options.MaxPending.ShouldBe(100_000, "ingest is refused past 100,000 messages not yet processed");
    }

    [Fact]
    public void The_cluster_name_and_max_ack_pending_come_from_their_variables()
    {
        var options = ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), ("SLUICE_CLUSTER_NAME", "eu_1"), ("SLUICE_CLUSTER_MAX_ACK_PENDING", "2000")));
        (options.Name, options.MaxAckPending).ShouldBe(("eu_1", 2000));
    }

    [Fact]
    public void Max_pending_comes_from_its_variable_and_is_bounded()
    {
        ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), ("SLUICE_CLUSTER_MAX_PENDING", "2400"))).MaxPending.ShouldBe(2400);
        Should.Throw<SluiceException>(() => ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), ("SLUICE_CLUSTER_MAX_PENDING", "5"))))
            .Message.ShouldContain("SLUICE_CLUSTER_MAX_PENDING: '5' is not a whole number from 10 to 100000000");
    }

    [Fact]
    public void Any_order_is_the_opt_out_and_another_word_is_refused()
    {
        ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), ("SLUICE_CLUSTER_ORDER", "any"))).KeyOrder.ShouldBeFalse();
        ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), ("SLUICE_CLUSTER_ORDER", "key"))).KeyOrder.ShouldBeTrue();
        Should.Throw<SluiceException>(() => ClusterOptions.FromEnvironment(Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), ("SLUICE_CLUSTER_ORDER", "sorted"))))
            .Message.ShouldContain("SLUICE_CLUSTER_ORDER: 'sorted' is not an order");
    }

    [Fact]
    public void Without_nats_servers_the_error_names_the_variable_and_how_to_set_it()
    {
        var e = Should.Throw<SluiceException>(() => ClusterOptions.FromEnvironment(Env()));
        e.Message.ShouldContain("SLUICE_CLUSTER_NATS is not set");
        e.Message.ShouldContain("scripts/services.sh env");
    }

    [Theory]
    [InlineData("SLUICE_CLUSTER_NATS", "127.0.0.1:4222", "'127.0.0.1:4222' is not a NATS server address")]
    [InlineData("SLUICE_CLUSTER_PARTITIONS", "0", "SLUICE_CLUSTER_PARTITIONS: '0' is not a whole number from 1 to 1024")]
    [InlineData("SLUICE_CLUSTER_REPLICAS", "three", "SLUICE_CLUSTER_REPLICAS: 'three' is not a whole number from 1 to 5")]
    [InlineData("SLUICE_CLUSTER_ACK_WAIT", "-5", "SLUICE_CLUSTER_ACK_WAIT: '-5' is not a whole number from 1 to 3600")]
    [InlineData("SLUICE_CLUSTER_MAX_ACK_PENDING", "10", "SLUICE_CLUSTER_MAX_ACK_PENDING: '10' is not a whole number from 100 to 1000000")]
    [InlineData("SLUICE_CLUSTER_NAME", "Eu-1", "SLUICE_CLUSTER_NAME: 'Eu-1' is not a cluster name")]
    public void A_wrong_setting_is_refused_naming_it(string name, string value, string message)
    {
        var env = name == "SLUICE_CLUSTER_NATS" ? Env((name, value)) : Env(("SLUICE_CLUSTER_NATS", "nats://127.0.0.1:4222"), (name, value));
        Should.Throw<SluiceException>(() => ClusterOptions.FromEnvironment(env)).Message.ShouldContain(message);
    }
}
