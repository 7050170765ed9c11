using System.Runtime.CompilerServices;
using Sluice.Core.Pipeline;

namespace Sluice.IntegrationTests.Pipeline;

/// <summary>A stream source that yields a list of batches, each after <c>before(index)</c> completes.</summary>
internal sealed class ListSource(IReadOnlyList<RecordBatch> batches, Func<int, Task> before) : IStreamSource
{
    private int _read;

    public bool CaughtUp => _read == batches.Count;

    public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var batch in batches)
        {
            await before(_read);
            _read++;
            yield return batch;
        }
    }

    public Task AcknowledgeAsync(long position, CancellationToken ct) => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>A sink that records what it is given; with a gate, each write waits for it.</summary>
internal sealed class RecordingSink(string name, SinkJoining joining, SemaphoreSlim? gate) : IBatchSink
{
    public string Name => name;

    public SinkJoining Joining => joining;

    private readonly TaskCompletionSource _firstWrite = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public List<RecordBatch> Writes { get; } = [];

    public Task FirstWrite => _firstWrite.Task;

    public async Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct)
    {
        lock (Writes) { Writes.Add(batch); }
        _firstWrite.TrySetResult();
        if (gate is not null) { await gate.WaitAsync(ct); }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
