using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Cluster;
using Sluice.Core;
using Sluice.Core.Status;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// The cluster's worker registry on each provider (the same SQL): a worker registers, beats with its health, what it
/// holds and its lags, is seen by another store instance (another worker), shows as lost once silent past the limit
/// (a fake clock), and an id live in another process is refused.
/// </summary>
public abstract class WorkerRegistryConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    protected TFixture Fixture { get; } = new();

    public void Dispose()
    {
        Fixture.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void A_worker_registers_beats_with_its_holds_and_health_and_is_lost_once_silent()
    {
        var one = Registry("a", new WorkerInfo("w1", "host-a", Environment.ProcessId, 8081, "shop", "1.0.0"));
        var two = Registry("b", new WorkerInfo("w2", "host-b", 4242, 8082, "shop", "1.0.0"));
        one.Register();
        two.Register();
        one.SetHolding("partitions", ["3", "1"]);
        one.SetHolding("slot", ["sluice_shop"]);
        one.Heartbeat(null, [new PipelineLag("shop/events", 120)]);
        Fixture.Time.Advance(TimeSpan.FromSeconds(6));
        two.Heartbeat("sink postgres: connection refused", []);
        one.Heartbeat(null, [new PipelineLag("shop/events", 80)]);

        var seen = WorkerRegistry.List(Fixture.OpenStore("c"), Fixture.Time);
        seen.Select(w => w.Id).ShouldBe(["w1", "w2"]);
        var w1 = seen[0];
        (w1.Host, w1.Pid, w1.Port, w1.Recipe, w1.Health, w1.HeartbeatAgeSeconds).ShouldBe(("host-a", Environment.ProcessId, 8081, "shop", "green", 0.0));
        w1.Holds["partitions"].ShouldBe(["1", "3"]);
        w1.Holds["slot"].ShouldBe(["sluice_shop"]);
        w1.Lags.ShouldBe([new PipelineLag("shop/events", 80)]);
        (seen[1].Health, seen[1].Reason).ShouldBe(("red", "sink postgres: connection refused"));

        one.SetHolding("slot", []);
        one.Heartbeat(null, []);
        Fixture.Time.Advance(WorkerRegistry.LostAfter + TimeSpan.FromSeconds(1));
        seen = WorkerRegistry.List(Fixture.OpenStore("c"), Fixture.Time);
        seen[0].Holds.Keys.ShouldBe(["partitions"], "holding nothing of a kind drops it");
        seen.ShouldAllBe(w => w.Health == "lost");
        seen[1].Reason.ShouldBe("no heartbeat for 11 s (limit 10 s)");

        two.Leave();
        WorkerRegistry.List(Fixture.OpenStore("c"), Fixture.Time)[1].Health.ShouldBe("stopped", "a clean stop is not a loss");
    }

    [Fact]
    public void Holders_of_one_kind_add_and_release_their_own_items_without_overwriting_each_other()
    {
        var one = Registry("a", new WorkerInfo("w1", "host-a", Environment.ProcessId, 8081, "shop", "1.0.0"));
        one.Register();
        // Two pipelines' partitions, a job and a file: each holder adds and lets go of its own.
        one.Hold("partitions", "SLUICE_shop_events/2");
        one.Hold("partitions", "SLUICE_shop_orders/0");
        one.Hold("partitions", "SLUICE_shop_events/2");
        one.Hold("jobs", "shop/nightly (run 7)");
        one.Hold("files", "a.csv");
        one.Release("files", "a.csv");
        one.Release("jobs", "not held");
        one.Heartbeat(null, []);

        var w1 = WorkerRegistry.List(Fixture.OpenStore("c"), Fixture.Time).Single();
        w1.Holds.Keys.ShouldBe(["jobs", "partitions"], "a kind whose last item went is dropped");
        w1.Holds["partitions"].ShouldBe(["SLUICE_shop_events/2", "SLUICE_shop_orders/0"], "one stream's partitions do not replace another's, and an item is listed once");
        w1.Holds["jobs"].ShouldBe(["shop/nightly (run 7)"]);

        one.Release("partitions", "SLUICE_shop_events/2");
        one.Leave();
        WorkerRegistry.List(Fixture.OpenStore("c"), Fixture.Time).Single().Holds.ShouldBeEmpty("a clean stop holds nothing");
        one.Holding.ShouldBeEmpty();
    }

    [Fact]
    public void An_id_live_in_another_process_is_refused_and_a_dead_ones_is_taken_over()
    {
        Registry("a", new WorkerInfo("w1", "elsewhere", 4242, 8081, "shop", "1.0.0")).Register();
        var again = Registry("b", new WorkerInfo("w1", Environment.MachineName, Environment.ProcessId, 8081, "shop", "1.0.0"));
        Should.Throw<SluiceException>(again.Register).Message
            .ShouldStartWith("cluster: worker id 'w1' is in use by pid 4242 on elsewhere (heartbeat 0 s ago); give each worker its own data folder or SLUICE_WORKER_ID");

        Fixture.Time.Advance(WorkerRegistry.LostAfter + TimeSpan.FromSeconds(1));
        again.Register();
        WorkerRegistry.List(Fixture.OpenStore("c"), Fixture.Time).Single().Pid.ShouldBe(Environment.ProcessId, "a lost worker's id is taken over by its restart");
    }

    private WorkerRegistry Registry(string worker, WorkerInfo info) => new(Fixture.OpenStore(worker), Fixture.Time, info, NullLoggerFactory.Instance);
}

public sealed class SqliteWorkerRegistryTests : WorkerRegistryConformance<SqliteMetadataFixture>;

public sealed class PostgresWorkerRegistryTests : WorkerRegistryConformance<PostgresMetadataFixture>;
