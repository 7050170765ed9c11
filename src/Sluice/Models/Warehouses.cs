using Sluice.Connectors.Postgres;
using Sluice.Core.Recipes;

namespace Sluice.Models;

/// <summary>Opens the warehouse a models job runs on.</summary>
public static class Warehouses
{
    /// <param name="scope">The job's full name (<c>recipe/job</c>): model state and day records are kept per scope.</param>
    /// <param name="postgres">Explicit PostgreSQL settings (tests, benchmarks); default: the environment, with the job's database.</param>
    public static IWarehouse Open(IEngineServices services, ModelsOptions options, string scope, WarehouseEngine? engine = null, Npgsql.NpgsqlConnectionStringBuilder? postgres = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.EffectiveEngine(engine) switch
        {
            WarehouseEngine.Postgres => new Postgres.PostgresWarehouse(services, scope, postgres ?? PostgresConnectionOptions.FromEnvironment().WithDatabase(options.Database).Builder()),
            _ => new Embedded.LakeWarehouse(services, scope),
        };
    }
}
