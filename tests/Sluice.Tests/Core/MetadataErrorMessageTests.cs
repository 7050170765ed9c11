using Microsoft.Data.Sqlite;
using Sluice.Core.Metadata;
using Sluice.Lake;

namespace Sluice.Tests.Core;

public sealed class MetadataErrorMessageTests
{
    [Theory]
    [InlineData(26, 26, "the file is not a SQLite database (corrupt?) (SQLITE_NOTADB); restore it from a backup, or run `sluice recover --data /d`")]
    [InlineData(11, 11, "the database is corrupt (SQLITE_CORRUPT); restore it from a backup, or run `sluice recover --data /d`")]
    [InlineData(8, 8 | (1 << 8), "it is read-only (SQLITE_READONLY)")]
    [InlineData(13, 13, "the disk is full (SQLITE_FULL)")]
    [InlineData(3, 3, "access denied (SQLITE_PERM)")]
    public void Sqlite_result_codes_become_a_cause_and_what_to_do(int code, int extended, string expected)
    {
        MetadataUnavailableException.Describe(new SqliteException("raw sqlite text", code, extended), "/d").ShouldStartWith(expected);
    }

    [Fact]
    public void An_unknown_code_keeps_sqlites_own_text()
    {
        MetadataUnavailableException.Describe(new SqliteException("something new", 99), "/d").ShouldBe("something new");
    }

    [Theory]
    [InlineData("VARCHAR", "String")]
    [InlineData("BIGINT", "Integer")]
    [InlineData("INTEGER", "Integer")]
    [InlineData("DOUBLE", "Double")]
    [InlineData("DECIMAL(18,3)", "Double")]
    [InlineData("BOOLEAN", "Boolean")]
    [InlineData("DATE", "Date")]
    [InlineData("TIMESTAMP WITH TIME ZONE", "Timestamp")]
    [InlineData("TIMESTAMP_MS", "Timestamp")]
    [InlineData("BLOB", "String")]
    public void Recovered_columns_take_the_field_type_duckdb_reads_back(string duckDb, string expected)
    {
        LakeRecovery.FieldTypeOf(duckDb).ToString().ShouldBe(expected);
    }
}
