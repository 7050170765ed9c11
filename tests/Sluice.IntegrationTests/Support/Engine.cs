using Sluice.Recipes;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Core;
using Sluice.Core.Recipes;
using Sluice.Hosting;

namespace Sluice.IntegrationTests.Support;

/// <summary>Engine services over a temporary data folder, and the repository's recipes, for in-process tests.</summary>
public sealed class Engine : IDisposable
{
    private readonly TempFolder _folder = new("sluice-data");

    private readonly IDisposable? _mount;

    /// <param name="mount">Mounts a file system on the data folder before anything opens it (a small tmpfs to fill); unmounted after the services are disposed.</param>
    public Engine(TimeProvider? time = null, Func<string, IDisposable>? mount = null)
    {
        Environment.SetEnvironmentVariable("SLUICE_RECIPES", TestPaths.Recipes);
        _mount = mount?.Invoke(_folder.Path);
        Services = new EngineServices(new DataDirectory(_folder.Path), time ?? TimeProvider.System, NullLoggerFactory.Instance);
    }

    public EngineServices Services { get; }

    public string DataRoot => _folder.Path;

    public static Recipe LoadRecipe(string name) => new RecipeLoader(RecipeComponents.Create()).Load(TestPaths.Recipe(name));

    public long Count(string sql) => Convert.ToInt64(Services.Query.Query(sql).Rows[0][0], System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose()
    {
        Services.Dispose();
        _mount?.Dispose();
        _folder.Dispose();
    }
}
