using Npgsql;
using Sluice.Core.Schema;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// The database's domains by oid, each resolved to its base type and type modifier (through domains over domains), so
/// a streamed column of a domain is typed as the snapshot types it (<see cref="PgSnapshotReader.ColumnsAsync"/>).
/// pgoutput names a column's own type, the domain, and its Type message carries no base type: the catalog does.
/// </summary>
internal sealed class PgDomains(PostgresConnectionOptions connection)
{
    /// <summary>Oids below this are built in (Postgres's FirstNormalObjectId): never a domain.</summary>
    private const uint FirstUserOid = 16384;

    private readonly HashSet<uint> _known = [];
    private Dictionary<uint, (uint Base, int Modifier)> _domains = [];

    /// <summary>True when a column's type is a user type not seen at the last load (a domain created since, perhaps).</summary>
    public bool Unknown(PgOutputRelation relation)
    {
        ArgumentNullException.ThrowIfNull(relation);
        return relation.Columns.Any(c => c.TypeOid >= FirstUserOid && !_known.Contains(c.TypeOid));
    }

    /// <summary>Reads every domain of the database, and remembers <paramref name="seen"/> as known (domains or not).</summary>
    public async Task LoadAsync(IEnumerable<uint> seen, CancellationToken ct)
    {
        var raw = new Dictionary<uint, (uint Base, int Modifier)>();
        await using (var db = new NpgsqlConnection(connection.ConnectionString("sluice-cdc-types")))
        {
            await db.OpenAsync(ct).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("SELECT oid, typbasetype, typtypmod FROM pg_type WHERE typtype = 'd'", db);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                raw[r.GetFieldValue<uint>(0)] = (r.GetFieldValue<uint>(1), r.GetInt32(2));
            }
        }

        _domains = raw.ToDictionary(p => p.Key, p => Resolve(raw, p.Key, -1));
        _known.UnionWith(seen);
        _known.UnionWith(raw.Keys);
    }

    /// <summary>The field of a column: a domain's base type, with the column's modifier or else the domain's.</summary>
    public FieldSpec FieldOf(PgOutputColumn column)
    {
        var (type, modifier) = _domains.TryGetValue(column.TypeOid, out var resolved)
            ? (resolved.Base, column.TypeModifier == -1 ? resolved.Modifier : column.TypeModifier)
            : (column.TypeOid, column.TypeModifier);
        return PgTypes.FieldOf(column.Name, type, modifier);
    }

    private static (uint Base, int Modifier) Resolve(Dictionary<uint, (uint Base, int Modifier)> raw, uint oid, int modifier)
    {
        // Bounded: a domain's base type existed before it, so the chain has no cycle; the depth limit only guards that.
        for (var depth = 0; depth < 100 && raw.TryGetValue(oid, out var step); depth++)
        {
            if (modifier == -1) { modifier = step.Modifier; }
            oid = step.Base;
        }

        return (oid, modifier);
    }
}
