namespace Sluice.Core;

/// <summary>
/// An exclusive, cross-process lock on a file. .NET on Unix backs <see cref="FileShare.None"/> with
/// <c>flock</c>, which the kernel releases when the holder dies, so a SIGKILLed holder never leaves a stale lock.
/// </summary>
public sealed class ProcessLock : IDisposable
{
    private readonly FileStream _stream;

    private ProcessLock(FileStream stream) => _stream = stream;

    public static ProcessLock? TryAcquire(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new ProcessLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static async Task<ProcessLock> AcquireAsync(string path, TimeProvider time, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = time.GetUtcNow() + timeout;
        while (true)
        {
            var held = TryAcquire(path);
            if (held is not null)
            {
                return held;
            }

            if (time.GetUtcNow() >= deadline)
            {
                throw new TimeoutException($"Could not take the lock '{path}' within {timeout.TotalSeconds:0} s: another Sluice process holds it.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), time, ct).ConfigureAwait(false);
        }
    }

    public void Dispose() => _stream.Dispose();
}
