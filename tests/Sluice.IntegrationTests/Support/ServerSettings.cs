namespace Sluice.IntegrationTests.Support;

/// <summary>
/// The one place tests read server addresses from: the variables <c>scripts/services.sh env</c> prints, with that
/// script's defaults. A server that does not answer fails its tests with this hint; they are never skipped.
/// </summary>
internal static class ServerSettings
{
    public const string Hint = "start the test servers first: scripts/services.sh up && eval \"$(scripts/services.sh env)\"";

    public static string PgHost => Env("PGHOST", "127.0.0.1");

    public static int PgPort => int.Parse(Env("PGPORT", "54329"), System.Globalization.CultureInfo.InvariantCulture);

    public static string PgUser => Env("PGUSER", "sluice");

    public static string PgPassword => Env("PGPASSWORD", "sluice");

    public static string PgDatabase => Env("PGDATABASE", "sluice");

    public static string PostgresConnectionString => Patient($"Host={PgHost};Port={PgPort};Username={PgUser};Password={PgPassword};Database={PgDatabase}");

    /// <summary>
    /// How long a test's own connection to Postgres may take to open. Npgsql's 15 s default was seen to run out in
    /// set-up on a machine at load 100+ (the server answers, just late); a server that is down is refused at once anyway.
    /// </summary>
    public const int PostgresConnectSeconds = 60;

    /// <summary><paramref name="connectionString"/> with the tests' connect timeout (<see cref="PostgresConnectSeconds"/>).</summary>
    public static string Patient(string connectionString) =>
        new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { Timeout = PostgresConnectSeconds }.ConnectionString;

    /// <summary>
    /// A test's own connection, opened with the tests' connect timeout, and opened again (up to three times in all)
    /// after a failure Npgsql calls transient: opening is idempotent, whatever the set-up does next.
    /// </summary>
    public static async Task<Npgsql.NpgsqlConnection> OpenPostgresAsync(string connectionString)
    {
        for (var attempt = 1; ; attempt++)
        {
            var connection = new Npgsql.NpgsqlConnection(Patient(connectionString));
            try
            {
                await connection.OpenAsync();
                return connection;
            }
            catch (Npgsql.NpgsqlException e) when (e.IsTransient && attempt < 3)
            {
                await connection.DisposeAsync();
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
        }
    }

    public static string RedisUrl => Env("REDIS_URL", "redis://127.0.0.1:63799");

    public static string ClickHouseUrl => Env("CLICKHOUSE_URL", "http://127.0.0.1:18123");

    public static string SmtpHost => Env("SMTP_HOST", "127.0.0.1");

    public static int SmtpPort => int.Parse(Env("SMTP_PORT", "2525"), System.Globalization.CultureInfo.InvariantCulture);

    public static string SmtpMailDir => Env("SLUICE_SMTP_MAILDIR", Path.Combine(TestPaths.RepoRoot, "sluice-data", "services", "smtp", "mail"));

    private static string Env(string name, string fallback) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : fallback;
}
