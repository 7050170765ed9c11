using Microsoft.Extensions.Logging;
using Sluice.Core.DeadLetters;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Lake;

namespace Sluice.Core;

/// <summary>The stores and clock of one data folder, built once per process and shared by every component.</summary>
public sealed class EngineServices : IEngineServices, IDisposable
{
    public EngineServices(DataDirectory data, TimeProvider time, ILoggerFactory logging)
    {
        Data = data;
        Time = time;
        Logging = logging;
        Metadata = new MetadataStore(data);
        Lake = new LakeStore(data, Metadata, time);
        Query = new LakeQueryEngine(Lake);
        DeadLetters = new DeadLetterStore(Metadata, time);
        Status = new Status.StatusBoard(time);
    }

    public DataDirectory Data { get; }

    public MetadataStore Metadata { get; }

    public LakeStore Lake { get; }

    public LakeQueryEngine Query { get; }

    public DeadLetterStore DeadLetters { get; }

    public TimeProvider Time { get; }

    public ILoggerFactory Logging { get; }

    public HealthState Health { get; } = new();

    public Status.StatusBoard Status { get; }

    public void Dispose() => Logging.Dispose();
}
