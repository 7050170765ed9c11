using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Core;
using Sluice.Core.Recipes;

namespace Sluice.IntegrationTests.Support;

/// <summary>Engine services over a temporary data folder, and the repository's recipes, for in-process tests.</summary>
internal sealed class Engine : IDisposable
{
    private readonly TempFolder _folder = new("sluice-data");

    public Engine(TimeProvider? time = null)
    {
        Environment.SetEnvironmentVariable("SLUICE_RECIPES", TestPaths.Recipes);
        Services = new EngineServices(new DataDirectory(_folder.Path), time ?? TimeProvider.System, NullLoggerFactory.Instance);
    }

    public EngineServices Services { get; }

    public string DataRoot => _folder.Path;

    public static Recipe LoadRecipe(string name) => new RecipeLoader(Components.Create()).Load(TestPaths.Recipe(name));

    public long Count(string sql) => Convert.ToInt64(Services.Query.Query(sql).Rows[0][0], System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose()
    {
        Services.Dispose();
        _folder.Dispose();
    }
}
