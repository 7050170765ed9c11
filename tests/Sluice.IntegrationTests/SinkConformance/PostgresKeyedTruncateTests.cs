using static Sluice.IntegrationTests.SinkConformance.MirrorBatches;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// A change stream's truncate in the <c>postgres</c> sink's keyed change mode (<c>keys:</c>, not <c>mode: mirror</c>):
/// it has no key, so it is not a row; it removes every key's row older than itself (a TRUNCATE in the source, or a
/// snapshot taken again, which starts with one: CI's ClusterWorkerHoldsTests failed its pipeline on the null key).
/// </summary>
public sealed class PostgresKeyedTruncateTests : IAsyncLifetime
{
    private PostgresSinkFixture Fixture { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Fixture.DisposeAsync();

    [Fact]
    public async Task A_truncate_removes_the_rows_older_than_itself_and_the_changes_after_it_land()
    {
        await using var sink = Fixture.Create();
        await sink.WriteAsync(Changes(10, ("c", 1, "a", 1), ("c", 2, "b", 2)), "keyed", CancellationToken.None);
        (await Names()).ShouldBe(["1:a", "2:b"]);

        // One transaction: a truncate, then an insert after it. The rows before it go; the insert lands.
        await sink.WriteAsync(Changes(20, ("u", 2, "b2", 3), ("t", 0, null, 0), ("c", 3, "c", 4)), "keyed", CancellationToken.None);
        (await Names()).ShouldBe(["3:c"], "the truncate removed keys 1 and 2 (2's update came before it); 3 came after it");

        // The same batch again (a replay): nothing newer than the truncate is removed.
        await sink.WriteAsync(Changes(20, ("u", 2, "b2", 3), ("t", 0, null, 0), ("c", 3, "c", 4)), "keyed", CancellationToken.None);
        await sink.WriteAsync(Changes(30, ("c", 4, "d", 5)), "keyed", CancellationToken.None);
        (await Names()).ShouldBe(["3:c", "4:d"]);

        // A batch of a truncate alone.
        await sink.WriteAsync(Changes(40, ("t", 0, null, 0)), "keyed", CancellationToken.None);
        (await Names()).ShouldBeEmpty();
    }

    private async Task<List<string>> Names() =>
        (await Fixture.ReadAsync()).Select(r => r.Split(' ')).Select(f => $"{Value(f, "id")}:{Value(f, "name")}").Order(StringComparer.Ordinal).ToList();

    private static string Value(string[] fields, string name) => fields.Single(f => f.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..];
}
