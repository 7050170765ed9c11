using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.IntegrationTests.Support;
using Sluice.Jobs;
using Sluice.Serving.Auth;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// Workers sharing one cluster's Postgres store: two store instances with connections of their own (two pools), and two
/// <c>sluice</c> processes on two data folders with the same <c>SLUICE_CLUSTER_POSTGRES</c>.
/// </summary>
public sealed class SharedMetadataTests : IDisposable
{
    private readonly PostgresMetadataFixture _fixture = new();
    private readonly List<string> _folders = [];

    public void Dispose()
    {
        _fixture.Dispose();
        foreach (var f in _folders.Where(Directory.Exists)) { Directory.Delete(f, recursive: true); }
    }

    [Fact]
    public async Task Concurrent_checkpoint_writes_of_two_workers_all_succeed_and_both_read_the_last()
    {
        var a = new CheckpointStore(_fixture.OpenStore("a"), _fixture.Time);
        var b = new CheckpointStore(_fixture.OpenStore("b"), _fixture.Time);
        // Eight writers on the same ten keys at once: an upsert that raced (read, then insert) would fail on the key.
        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(() =>
        {
            var store = w % 2 == 0 ? a : b;
            for (var i = 0; i < 100; i++) { store.Set($"k{i % 10}", $"{w}:{i}"); }
        })));

        for (var k = 0; k < 10; k++)
        {
            var value = a.Get($"k{k}");
            b.Get($"k{k}").ShouldBe(value);
            value!.Split(':')[1].ShouldBe($"{90 + k}", "each writer's last write of a key is its 10th; one of them is kept");
        }

        // A checkpoint written in a transaction beside other work is seen by the other worker only once committed.
        using var c = _fixture.OpenStore("a").Connect();
        using var tx = c.BeginTransaction();
        a.Set("k0", "in-flight", c, tx);
        b.Get("k0").ShouldNotBe("in-flight");
        tx.Commit();
        b.Get("k0").ShouldBe("in-flight");
    }

    [Fact]
    public async Task A_store_transaction_left_idle_by_a_paused_worker_is_ended_by_the_server_but_a_job_fence_is_kept()
    {
        // A worker SIGSTOPped inside a store transaction held the store-wide write lock (or a pull's cursor row) for
        // ever, and the worker taking its work over timed out behind it. The server now ends the idle transaction.
        var paused = _fixture.OpenStore("a");
        var other = _fixture.OpenStore("b");
        using var held = paused.Connect();
        var heldTx = held.BeginWrite();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        await Task.Run(() =>
        {
            using var c = other.Connect();
            using var tx = c.BeginWrite();
            tx.Commit();
        });
        waited.Elapsed.ShouldBeGreaterThan(TimeSpan.FromSeconds(5), "the other worker waited for the idle transaction's lock");
        Console.WriteLine($"the other worker's write lock after {waited.Elapsed.TotalSeconds:0.0} s");
        Should.Throw<Exception>(() => heldTx.Commit(), "the idle transaction was ended: the paused worker commits nothing");

        // A job's fence sits idle while its run commits its output elsewhere, which may take longer: it is kept.
        var runs = new JobRunStore(paused, _fixture.Time);
        var leases = new JobLeases(paused, _fixture.Time, TimeSpan.FromMinutes(5));
        var lease = leases.StartSlot(runs, "shop/models", new DateTimeOffset(2026, 3, 1, 6, 0, 0, TimeSpan.Zero)).ShouldNotBeNull();
        using (leases.Fence(lease))
        {
            await Task.Delay(SharedMetadata.IdleInTransactionTimeout + TimeSpan.FromSeconds(3));
        }

        leases.Finish(lease, JobRunStore.Succeeded, 1, 1, "ok").ShouldBeTrue("the fence's transaction committed after sitting idle past the limit");
    }

    [Fact]
    public async Task A_job_slot_fired_by_every_worker_at_once_is_run_by_one()
    {
        var stores = new[] { new JobRunStore(_fixture.OpenStore("a"), _fixture.Time), new JobRunStore(_fixture.OpenStore("b"), _fixture.Time) };
        var slot = new DateTimeOffset(2026, 3, 1, 6, 0, 0, TimeSpan.Zero);
        var fire = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            await fire.Task;
            return stores[w % 2].StartOnce("shop/daily", slot, "schedule");
        })).ToList();
        fire.SetResult();
        var claims = await Task.WhenAll(workers);

        claims.Count(id => id is not null).ShouldBe(1, "one claim of the slot across the cluster");
        stores[1].History("shop/daily").Select(r => r.Id).ShouldBe(new[] { claims.Single(id => id is not null)!.Value }, false, "the losers left no run behind");
    }

    [Fact]
    public void A_token_created_by_one_worker_is_honoured_and_revoked_across_workers()
    {
        var a = new TokenStore(_fixture.OpenStore("a"), _fixture.Time);
        var b = new TokenStore(_fixture.OpenStore("b"), _fixture.Time);
        var (info, token) = a.Create("acme", TokenRole.Reader, "dash");

        b.Resolve(token)!.TokenId.ShouldBe(info.Id);
        b.Revoke(info.Id).ShouldBeTrue();
        a.Resolve(token).ShouldBeNull("revoked by the other worker");

        var letters = new DeadLetterStore(_fixture.OpenStore("b"), _fixture.Time);
        new DeadLetterStore(_fixture.OpenStore("a"), _fixture.Time).Add("http:acme", "event 1", "bad", "{}", "k1");
        letters.Add("http:acme", "event 1", "bad again", "{}", "k1");
        letters.List().Single().Reason.ShouldBe("bad again", "one letter per dedup key across workers");
    }

    [Fact]
    public void A_shared_store_refuses_what_only_sqlite_holds_and_an_unreachable_server_is_one_clear_error()
    {
        Should.Throw<MetadataUnavailableException>(() => _fixture.OpenStore("a").Open()).Message
            .ShouldContain("does not hold it yet (docs/SCALING.md");

        var nowhere = SharedMetadata.Parse("Host=127.0.0.1;Port=1;Username=sluice;Database=sluice;Timeout=3", "nowhere");
        Should.Throw<MetadataUnavailableException>(() => MetadataStore.For(new Core.DataDirectory(Path.GetTempPath()), nowhere)).Message
            .ShouldStartWith("cannot open the shared metadata store postgres://sluice@127.0.0.1:1/sluice schema sluice_meta_nowhere:");
        Should.Throw<Core.SluiceException>(() => SharedMetadata.Parse("postgres:///sluice", "x")).Message.ShouldStartWith("SLUICE_CLUSTER_POSTGRES: ");
    }

    [Fact]
    public async Task Two_sluice_processes_on_two_data_folders_share_tokens_through_the_cluster_store()
    {
        var env = new Dictionary<string, string>
        {
            [SharedMetadata.PostgresVariable] = $"postgres://{ServerSettings.PgUser}:{ServerSettings.PgPassword}@{ServerSettings.PgHost}:{ServerSettings.PgPort}/{ServerSettings.PgDatabase}",
            [SharedMetadata.NameVariable] = _fixture.Cluster,
        };
        var first = Folder();
        var second = Folder();

        using (var create = SluiceProcess.Start(first, env, "tokens", "create", "--tenant", "acme", "--role", "reader", "--name", "from-first", "--cluster"))
        {
            (await create.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, create.Stderr);
        }

        using var list = SluiceProcess.Start(second, env, "tokens", "list", "--cluster");
        (await list.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, list.Stderr);
        list.Stdout.ShouldContain("from-first");
        File.Exists(Path.Combine(second, "meta.db")).ShouldBeFalse("the cluster's store, not the data folder's, holds its tokens");
        using (var local = SluiceProcess.Start(second, env, "tokens", "list"))
        {
            (await local.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, local.Stderr);
            local.Stdout.ShouldNotContain("from-first", customMessage: "without --cluster a command keeps to its data folder's store, whatever the environment names");
        }

        env[SharedMetadata.NameVariable] = "Not-A-Name";
        using var bad = SluiceProcess.Start(second, env, "tokens", "list", "--cluster");
        (await bad.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(1);
        bad.Stderr.ShouldContain("SLUICE_CLUSTER_NAME: 'Not-A-Name' is not a cluster name");
    }

    private string Folder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "sluice-cluster-" + Guid.NewGuid().ToString("N")[..8]);
        _folders.Add(folder);
        Directory.CreateDirectory(folder);
        return folder;
    }
}
