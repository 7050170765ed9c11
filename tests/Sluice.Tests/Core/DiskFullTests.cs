using Microsoft.Data.Sqlite;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Core.IO;

namespace Sluice.Tests.Core;

/// <summary>A full disk is recognised wherever it was raised, named by the file that could not grow, and never taken for a lost server.</summary>
public sealed class DiskFullTests
{
    [Fact]
    public void Sqlites_full_names_the_metadata_store_since_sqlite_names_no_file()
    {
        var full = new SluiceException("sink 'api': could not record", new SqliteException("SQLite Error 13: 'database or disk is full'.", 13));
        DiskFull.Is(full).ShouldBeTrue();
        DiskFull.Describe(full, "/d/meta.db").ShouldBe("the metadata store /d/meta.db cannot grow: SQLite Error 13: 'database or disk is full'.");
    }

    [Fact]
    public void A_file_error_keeps_the_name_dotnet_gave_it()
    {
        var full = new SluiceException("model failed", new IOException("No space left on device : '/d/lake/_staging/x/000001.parquet'", 28));
        DiskFull.Is(full).ShouldBeTrue();
        DiskFull.Describe(full, "/d/meta.db").ShouldBe("No space left on device : '/d/lake/_staging/x/000001.parquet'");
    }

    [Fact]
    public void A_full_local_disk_is_not_a_transient_postgres_failure_but_a_broken_connection_still_is()
    {
        PgFailures.IsTransient(new IOException("No space left on device : '/d/lake/a.parquet'", 28)).ShouldBeFalse();
        PgFailures.IsTransient(new IOException("Connection reset by peer")).ShouldBeTrue();
    }
}
