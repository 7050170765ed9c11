using System.Globalization;
using Npgsql;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// The one place PostgreSQL connection settings come from: libpq's environment variables <c>PGHOST</c>, <c>PGPORT</c>,
/// <c>PGUSER</c>, <c>PGPASSWORD</c>, <c>PGDATABASE</c> (what <c>scripts/services.sh env</c> prints), with libpq's
/// defaults; a component may name its own database. Nothing else in the engine builds a connection string.
/// </summary>
public static class PostgresConnectionSettings
{
    public static NpgsqlConnectionStringBuilder FromEnvironment(string? database = null)
    {
        var user = Env("PGUSER") ?? Environment.UserName;
        return new NpgsqlConnectionStringBuilder
        {
            Host = Env("PGHOST") ?? "127.0.0.1",
            Port = int.TryParse(Env("PGPORT"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) ? port : 5432,
            Username = user,
            Password = Env("PGPASSWORD"),
            Database = database ?? Env("PGDATABASE") ?? user,
        };
    }

    /// <summary><c>user@host:port/database</c>, never the password: for messages.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return $"{settings.Username}@{settings.Host}:{settings.Port}/{settings.Database}";
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
}
