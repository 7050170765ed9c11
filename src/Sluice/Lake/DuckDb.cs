using DuckDB.NET.Data;

namespace Sluice.Lake;

/// <summary>
/// Opens the in-memory DuckDB every query and job computes in. Session settings are the same everywhere: UTC, a
/// bounded memory limit (<c>SLUICE_DUCKDB_MEMORY</c>, default 2GB) with spilling to the data folder's temp area, and
/// the functions of <see cref="DuckDbMacros"/>.
/// </summary>
public static class DuckDb
{
    public static DuckDBConnection OpenMemory(string tempFolder)
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        Directory.CreateDirectory(tempFolder);
        var memory = Environment.GetEnvironmentVariable("SLUICE_DUCKDB_MEMORY") ?? "2GB";
        LakeQueryEngine.Exec(connection, $"SET TimeZone = 'UTC'; SET memory_limit = {LakeQueryEngine.Literal(memory)}; SET temp_directory = {LakeQueryEngine.Literal(tempFolder)}; SET preserve_insertion_order = false;");
        DuckDbMacros.Install(connection);
        return connection;
    }
}
