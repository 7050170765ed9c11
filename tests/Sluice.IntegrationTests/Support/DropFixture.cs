using Sluice.Connectors.Files;
using Sluice.Core.Config;

namespace Sluice.IntegrationTests.Support;

/// <summary>An engine with the vehicle-files file types and a files source whose timings suit tests.</summary>
internal sealed class DropFixture : IAsyncDisposable
{
    public DropFixture(TimeSpan? onceWait = null, TimeSpan? stableAfter = null, long? groupMaxBytes = null)
    {
        Engine = new Engine();
        var errors = new ConfigErrors();
        var types = FileTypeCatalog.LoadFolder(Path.Combine(TestPaths.Recipe("vehicle-files"), "filetypes"), errors);
        errors.ThrowIfAny();
        Source = new FilesSource(Engine.Services, "vehicle-files", new FilesOptions
        {
            Folder = "vehicle-files",
            StableAfter = stableAfter ?? TimeSpan.FromMilliseconds(100),
            OnceWait = onceWait ?? TimeSpan.FromSeconds(2),
            GroupMaxBytes = groupMaxBytes ?? new FilesOptions().GroupMaxBytes,
        }, types);
        Source.Outcomes += o => { lock (Outcomes) { Outcomes.Add(o); } };
    }

    public Engine Engine { get; }

    public FilesSource Source { get; }

    public List<FileOutcome> Outcomes { get; } = [];

    public DropFolder Drop => Source.Drop;

    public void Drop_(string name, string content) => VehicleFiles.Write(Drop.Incoming, name, content);

    public Task<int> RunOnceAsync() => Source.RunOnceAsync(CancellationToken.None);

    public FileOutcome Outcome(string name) => Outcomes.Single(o => o.File == name);

    public FileRejection Rejection(string name) => FileRejection.FromJson(File.ReadAllText(Path.Combine(Drop.Failed, name + ".error.json")))!;

    public long Events => Engine.Count("SELECT count(*) FROM raw_data.vehicle_events");

    public async ValueTask DisposeAsync()
    {
        await Source.DisposeAsync();
        Engine.Dispose();
    }
}
