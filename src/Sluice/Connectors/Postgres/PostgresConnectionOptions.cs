using System.Globalization;
using Npgsql;
using Sluice.Core.Config;

namespace Sluice.Connectors.Postgres;

/// <summary>
/// Where a Postgres server is. The one place Sluice reads Postgres settings: a <c>connection:</c> block in the recipe
/// (values may be <c>${VAR}</c>), else libpq's environment variables <c>PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE</c>
/// (what <c>scripts/services.sh env</c> prints), else libpq's defaults. Nothing else in the engine reads them.
/// </summary>
public sealed class PostgresConnectionOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly PostgresConnectionOptions Default = new();

    /// <summary>Host name or address.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port.</summary>
    public int Port { get; init; } = 5432;

    /// <summary>User name.</summary>
    public string User { get; init; } = Environment.UserName;

    /// <summary>Password.</summary>
    public string? Password { get; init; }

    /// <summary>Database (default: the user's name, as libpq does; <see cref="Parse"/> computes it).</summary>
    public string Database { get; init; } = "";

    public static PostgresConnectionOptions FromEnvironment() => Parse(null, null);

    /// <summary>Reads the optional <c>connection</c> block of <paramref name="parent"/>.</summary>
    public static PostgresConnectionOptions Parse(ConfigMap? parent, string? component)
    {
        var map = parent?.Map("connection", doc: "The Postgres server; each key falls back to its libpq environment variable.");
        var host = EnvText.Resolve(map, "host", Default.Host, "PGHOST", doc: "Host name or address.");
        var portText = EnvText.Resolve(map, "port", Default.Port.ToString(CultureInfo.InvariantCulture), "PGPORT", doc: "TCP port.");
        var user = EnvText.Resolve(map, "user", Default.User, "PGUSER", doc: "User name.", shown: "the OS user");
        var password = EnvText.Resolve(map, "password", "", "PGPASSWORD", doc: "Password.");
        var database = EnvText.Resolve(map, "database", user, "PGDATABASE", doc: "Database.", shown: "the user name");
        if (!int.TryParse(portText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            if (map is not null) { map.Error("port", $"{component}: not a TCP port: '{portText}'"); }
            else if (parent is not null) { parent.Error("connection", $"{component}: PGPORT is not a TCP port: '{portText}'"); }
            else { throw new Core.SluiceException($"PGPORT is not a TCP port: '{portText}'"); }
            port = Default.Port;
        }

        map?.Done();
        return new PostgresConnectionOptions { Host = host, Port = port, User = user, Password = password.Length == 0 ? null : password, Database = database };
    }

    /// <summary>The same server with another database; <c>null</c> keeps this one.</summary>
    public PostgresConnectionOptions WithDatabase(string? database) =>
        database is null ? this : new() { Host = Host, Port = Port, User = User, Password = Password, Database = database };

    /// <summary>Where the server is and nothing else, for components that set their own session and pool options.</summary>
    public NpgsqlConnectionStringBuilder Builder() => new()
    {
        Host = Host,
        Port = Port,
        Username = User,
        Password = Password,
        Database = Database,
    };

    /// <summary><c>user@host:port/database</c>, never the password: for messages.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return $"{settings.Username}@{settings.Host}:{settings.Port}/{settings.Database}";
    }

    /// <summary>
    /// The Npgsql connection string. Sessions run in UTC with ISO dates, so timestamps read as text always carry the
    /// same offset and layout whatever the server's defaults are.
    /// </summary>
    public string ConnectionString(string applicationName = "sluice")
    {
        var builder = Builder();
        builder.ApplicationName = applicationName;
        builder.Timezone = "UTC";
        builder.Options = "-c DateStyle=ISO";
        // The source holds one connection per pipeline; pooling only helps the short admin queries.
        builder.Pooling = true;
        builder.MaxPoolSize = 8;
        builder.CommandTimeout = 300;
        return builder.ConnectionString;
    }

    public override string ToString() => $"postgres://{User}@{Host}:{Port}/{Database}";
}
