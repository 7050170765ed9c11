using Npgsql;
using Sluice.Core.Metadata;

namespace Sluice.Lake;

/// <summary>
/// Compaction and the orphan sweep run on one worker of a cluster at a time: a session-level Postgres advisory lock per
/// cluster schema, held on a connection of its own for as long as the pass runs, and let go when the pass ends or its
/// worker dies (the server ends the session). A worker that does not get it skips the pass; the next one tries again.
/// Their safety does not rest on the lock alone (a replaced file must still be current, a reservation is taken before
/// its file is deleted); the lock keeps two workers from merging the same small files twice over.
/// A data folder's lake has one writer process and needs none.
/// </summary>
internal sealed class LakeMaintenance : IDisposable
{
    private const string Key = "hashtext('sluice_lake_maintenance:' || current_schema())";

    private readonly NpgsqlConnection? _connection;

    private LakeMaintenance(NpgsqlConnection? connection) => _connection = connection;

    /// <summary>The lock, or null when another worker holds it now.</summary>
    public static LakeMaintenance? TryEnter(MetadataStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (store.Shared is null)
        {
            return new LakeMaintenance(null);
        }

        var connection = (NpgsqlConnection)store.Connect();
        try
        {
            if (connection.Scalar<bool>($"SELECT pg_try_advisory_lock({Key})"))
            {
                return new LakeMaintenance(connection);
            }
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        connection.Dispose();
        return null;
    }

    public void Dispose()
    {
        if (_connection is null)
        {
            return;
        }

        try
        {
            _connection.Execute($"SELECT pg_advisory_unlock({Key})");
        }
        finally
        {
            _connection.Dispose();
        }
    }
}
