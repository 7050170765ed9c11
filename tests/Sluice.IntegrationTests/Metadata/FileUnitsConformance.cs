using Sluice.Connectors.Files;

namespace Sluice.IntegrationTests.Metadata;

/// <summary>
/// A files pipeline's units in flight (<see cref="FileUnits"/>) against each provider, as
/// <see cref="MetadataStoreConformance{TFixture}"/> does for the core stores: in a cluster each worker numbers its own
/// positions, sees every worker's files in flight, and the worker that takes a dead worker's file over closes its unit
/// there, so the second store instance here (another worker) must see every write of the first.
/// </summary>
public abstract class FileUnitsConformance<TFixture> : IDisposable where TFixture : MetadataFixture, new()
{
    protected TFixture Fixture { get; } = new();

    public void Dispose()
    {
        Fixture.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void Each_worker_numbers_its_own_units_and_sees_every_workers_content_in_flight()
    {
        var a = new FileUnits(Fixture.Store, "r", "ingest", "worker:a");
        var b = new FileUnits(Fixture.OpenStore("b"), "r", "ingest", "worker:b");
        a.Last().ShouldBe(0);
        a.Add(new FileUnit(1, "x.csv", "kx"));
        a.Add(new FileUnit(2, "y.csv", "ky"));
        b.Add(new FileUnit(1, "z.csv", "kz"));

        a.Open().ShouldBe([new FileUnit(1, "x.csv", "kx"), new FileUnit(2, "y.csv", "ky")], "only its own units, in order");
        b.Open().ShouldBe([new FileUnit(1, "z.csv", "kz")]);
        (a.Last(), b.Last()).ShouldBe((2L, 1L), "positions are per worker");
        b.InFlight("kx").ShouldBe(["x.csv"], "the same content handed on by another worker is in flight");
        new FileUnits(Fixture.Store, "r", "other", "worker:b").InFlight("kx").ShouldBeEmpty("another pipeline's units are its own");

        a.Done(1);
        a.Done(2);
        a.Open().ShouldBeEmpty();
        a.Last().ShouldBe(2, "the newest finished row stays: it holds the last position handed out");
        b.InFlight("kx").ShouldBeEmpty();
    }

    [Fact]
    public void A_file_taken_over_closes_the_dead_workers_unit_without_moving_its_last_position_back()
    {
        var dead = new FileUnits(Fixture.Store, "r", "ingest", "worker:a");
        dead.Add(new FileUnit(7, "x.csv", "kx"));
        dead.Add(new FileUnit(8, "y.csv", "ky"));

        var taker = new FileUnits(Fixture.OpenStore("b"), "r", "ingest", "worker:b");
        taker.TakeOver("y.csv").ShouldBe(1);
        taker.Add(new FileUnit(taker.Last() + 1, "y.csv", "ky"));
        taker.TakeOver("nothing.csv").ShouldBe(0);

        var restarted = new FileUnits(Fixture.OpenStore("a2"), "r", "ingest", "worker:a");
        restarted.Open().ShouldBe([new FileUnit(7, "x.csv", "kx")], "the file taken over is no longer the dead worker's");
        restarted.Last().ShouldBe(8, "its last position stays: a restarted worker never hands out 8 again");
        taker.Open().ShouldBe([new FileUnit(1, "y.csv", "ky")]);
        restarted.InFlight("ky").ShouldBe(["y.csv"], "in flight once, at the taker's position");
    }

    [Fact]
    public void Units_of_a_store_before_positions_per_worker_are_kept_as_the_single_process_ones()
    {
        // The component's first migration only (a data folder written before cluster workers had units of their own).
        Fixture.Store.Migrate("files.units",
        [
            """
            CREATE TABLE file_units (
                recipe TEXT NOT NULL, pipeline TEXT NOT NULL, seq INTEGER NOT NULL, file_name TEXT NOT NULL,
                ledger_key TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (recipe, pipeline, seq));
            """,
        ]);
        using (var c = Fixture.Store.Connect())
        {
            Sluice.Core.Metadata.SqliteExtensions.Execute(c, "INSERT INTO file_units(recipe, pipeline, seq, file_name, ledger_key, done) VALUES ('r', 'ingest', 3, 'x.csv', 'kx', 0), ('r', 'ingest', 4, 'y.csv', 'ky', 1)");
        }

        var units = new FileUnits(Fixture.Store, "r", "ingest");
        units.Open().ShouldBe([new FileUnit(3, "x.csv", "kx")]);
        units.Last().ShouldBe(4);
        new FileUnits(Fixture.Store, "r", "ingest", "worker:a").Last().ShouldBe(0, "a cluster worker's positions start afresh");
    }
}

public sealed class SqliteFileUnitsTests : FileUnitsConformance<SqliteMetadataFixture>;

public sealed class PostgresFileUnitsTests : FileUnitsConformance<PostgresMetadataFixture>;
