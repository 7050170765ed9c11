using System.Runtime.CompilerServices;
using Sluice.Core.Metadata;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Pipeline;

/// <summary>
/// A source whose positions are only its batch numbers (the cluster's JetStream source, <see cref="ICheckpointScope.NumbersBatchesOnly"/>)
/// after a restart with its sinks' checkpoints apart (a worker killed between two sinks' commits): the new batches are
/// numbered above every sink's checkpoint, so no sink skips them as already written while the other's commit gets them acknowledged.
/// </summary>
public sealed class BatchNumberResumeTests
{
    private static readonly TableSchema Facts = new("facts", [new FieldSpec("id", FieldType.Integer, true)]);

    [Fact]
    public async Task New_batches_are_numbered_above_the_furthest_sink_and_every_sink_writes_them_before_they_are_acknowledged()
    {
        using var engine = new Engine();
        var ahead = new RecordingSink("ahead", SinkJoining.None, null);
        var behind = new RecordingSink("behind", SinkJoining.None, null);
        var checkpoints = new CheckpointStore(engine.Services.Metadata, engine.Services.Time);
        checkpoints.Set(StreamPipeline.SinkCheckpointKey("test", "p", "ahead") + ":" + NumberingSource.Scope, "5");
        checkpoints.Set(StreamPipeline.SinkCheckpointKey("test", "p", "behind") + ":" + NumberingSource.Scope, "2");
        var source = new NumberingSource(3);
        await using var pipeline = new StreamPipeline(engine.Services, "test", "p", source, [], [ahead, behind]);

        await pipeline.RunOnceAsync(CancellationToken.None);

        source.ResumedAfter.ShouldBe(5, "numbered on above the furthest sink's checkpoint");
        ahead.Writes.Select(w => w.Position).ShouldBe([6L, 7L, 8L], "the sink ahead skips none of the new events");
        behind.Writes.Select(w => w.Position).ShouldBe([6L, 7L, 8L]);
        source.Acknowledged.ShouldBe(8);
    }

    /// <summary>Numbers its batches on from where it is told to resume, as the cluster's JetStream source does.</summary>
    private sealed class NumberingSource(int batches) : IStreamSource, ICheckpointScope
    {
        public const string Scope = "worker:test";

        private int _read;

        public long? ResumedAfter { get; private set; }

        public long Acknowledged { get; private set; }

        public string? CheckpointScope => Scope;

        public bool NumbersBatchesOnly => true;

        public bool CaughtUp => _read == batches;

        public async IAsyncEnumerable<RecordBatch> ReadAsync(long? resumeAfter, [EnumeratorCancellation] CancellationToken ct)
        {
            ResumedAfter = resumeAfter;
            var position = resumeAfter ?? 0;
            for (; _read < batches;)
            {
                await Task.Yield();
                _read++;
                yield return new RecordBatch([new ColumnBatch(Facts, [new long?[] { _read }], 1)], ++position);
            }
        }

        public Task AcknowledgeAsync(long position, CancellationToken ct)
        {
            Acknowledged = Math.Max(Acknowledged, position);
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
