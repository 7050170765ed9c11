namespace Sluice.Connectors.Postgres;

/// <summary>
/// The names of a slot's snapshots (<see cref="Core.Pipeline.SnapshotRows"/>): the same rows read again after a crash
/// carry the same name, another snapshot of the same table another one. The initial snapshot is named by the slot's
/// consistent point, and so is the rest of it read by chunks after an interruption (a new slot, taken again, has a new
/// point); an incremental snapshot by its request's id; the rows of tables added to the recipe by the consistent point
/// of the temporary slot they were read in.
/// </summary>
internal static class PgSnapshotNames
{
    public static string Initial(long consistentPoint) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"i{consistentPoint:x}");

    public static string Request(long id) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"q{id}");

    public static string Added(long consistentPoint) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"a{consistentPoint:x}");
}
