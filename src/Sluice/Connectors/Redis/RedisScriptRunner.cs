using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Sluice.Connectors.Redis;

/// <summary>
/// Runs a sink's Lua script on one connection, connecting on first use, and retries what waiting cures (connection
/// trouble, a server still loading its data or busy with a script) with doubling pauses until it succeeds or the
/// pipeline stops; the retries show in the sink's status figures while they last. Shared by both Redis sinks.
/// </summary>
internal sealed class RedisScriptRunner(string url, TimeSpan retryDelay, TimeSpan retryMaxDelay, TimeProvider time, ILogger log) : IAsyncDisposable
{
    private readonly SemaphoreSlim _connectGate = new(1, 1);
    private ConnectionMultiplexer? _redis;

    public Core.Status.SinkStatus? Status { get; set; }

    public async Task<RedisResult> EvaluateAsync(string script, RedisKey[] keys, RedisValue[] args, CancellationToken ct)
    {
        var delay = retryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var redis = await ConnectAsync(ct).ConfigureAwait(false);
                var result = await redis.GetDatabase().ScriptEvaluateAsync(script, keys, args).WaitAsync(ct).ConfigureAwait(false);
                if (attempt > 1)
                {
                    RedisLog.Recovered(log, attempt);
                    Status?.Recovered();
                }

                return result;
            }
            catch (Exception e) when (Transient(e))
            {
                RedisLog.Retrying(log, e.Message, attempt, (long)delay.TotalMilliseconds);
                Status?.Retrying(attempt, e.Message, time.GetUtcNow());
                await Task.Delay(delay, time, ct).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, retryMaxDelay.Ticks));
            }
        }
    }

    private async Task<ConnectionMultiplexer> ConnectAsync(CancellationToken ct)
    {
        if (_redis is { } existing) { return existing; }
        await _connectGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return _redis ??= await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(url)).ConfigureAwait(false);
        }
        finally
        {
            _connectGate.Release();
        }
    }

    /// <summary>Connection trouble, or a server that is still loading its data after a restart.</summary>
    private static bool Transient(Exception e) =>
        e is RedisConnectionException or RedisTimeoutException ||
        (e is RedisServerException && (e.Message.StartsWith("LOADING", StringComparison.Ordinal) || e.Message.StartsWith("BUSY", StringComparison.Ordinal)));

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null) { await _redis.DisposeAsync().ConfigureAwait(false); }
        _connectGate.Dispose();
    }
}
