namespace Sluice.Core.Pipeline;

/// <summary>
/// The sinks' checkpoints of one pipeline, written by group commit. A sink that has committed a write records its
/// position here; if no checkpoint is being written it is written at once, else it waits and goes into the next
/// metadata transaction together with every other sink's that arrived meanwhile. Sinks that finish a batch together
/// (three sinks at 1,000 changes a second mostly do) then pay one transaction, one fsync with <c>synchronous=FULL</c>,
/// between them instead of one each. Nothing is weakened: a checkpoint is written only after its own sink committed,
/// a sink goes on only once its checkpoint is durable, and a failed transaction fails every sink that was in it.
/// </summary>
internal sealed class SinkCheckpointGroup(Action<IReadOnlyDictionary<string, string>> write)
{
    private readonly Lock _lock = new();
    private Dictionary<string, string> _pending = new(StringComparer.Ordinal);
    private TaskCompletionSource? _next;
    private bool _writing;

    /// <summary>Records <paramref name="key"/> = <paramref name="value"/>; done when the transaction that holds it has committed.</summary>
    public Task SetAsync(string key, string value)
    {
        TaskCompletionSource written;
        lock (_lock)
        {
            _pending[key] = value;
            written = _next ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_writing) { return written.Task; }
            _writing = true;
        }

        // Off the caller's thread: a sink's write ends with a socket await, which with inline socket completions
        // resumes on the socket thread, and this transaction's fsync there would stall every socket of the process.
        _ = Task.Run(WritePending);
        return written.Task;
    }

    /// <summary>Writes what is pending in one transaction; what arrived during it is written next, on a pool thread too.</summary>
    private void WritePending()
    {
        Dictionary<string, string> group;
        TaskCompletionSource written;
        lock (_lock)
        {
            (group, written) = (_pending, _next!);
            (_pending, _next) = (new Dictionary<string, string>(StringComparer.Ordinal), null);
        }

        try
        {
            write(group);
            written.SetResult();
        }
        catch (Exception e)
        {
            written.SetException(e);
        }

        lock (_lock)
        {
            if (_pending.Count == 0)
            {
                _writing = false;
                return;
            }
        }

        _ = Task.Run(WritePending);
    }
}
