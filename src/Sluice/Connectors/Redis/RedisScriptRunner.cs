using Microsoft.Extensions.Logging;
using Sluice.Core.Resilience;
using StackExchange.Redis;

namespace Sluice.Connectors.Redis;

/// <summary>
/// Runs a sink's Lua script on one connection, connecting on first use, through the shared <see cref="TransientRetry"/>
/// with <see cref="RedisFailures.IsTransient"/> (connection trouble, a server still loading its data or busy with a
/// script): the retries show in the sink's status figures while they last. Shared by both Redis sinks.
/// </summary>
internal sealed class RedisScriptRunner : IAsyncDisposable
{
    private readonly string _url;
    private readonly TimeProvider _time;
    private readonly TransientRetry _retry;
    private readonly SemaphoreSlim _connectGate = new(1, 1);
    private ConnectionMultiplexer? _redis;

    public RedisScriptRunner(string what, string url, RetryOptions retry, TimeProvider time, ILogger log)
    {
        _url = url;
        _time = time;
        _retry = new TransientRetry(what, retry, time, RedisFailures.IsTransient)
        {
            Retrying = a =>
            {
                RedisLog.Retrying(log, a.Error.Message, a.Attempt, (long)a.Delay.TotalMilliseconds);
                Status?.Retrying(a.Attempt, a.Error.Message, _time.GetUtcNow());
            },
            Recovered = attempts =>
            {
                RedisLog.Recovered(log, attempts);
                Status?.Recovered();
            },
        };
    }

    public Core.Status.SinkStatus? Status { get; set; }

    public async Task<RedisResult> EvaluateAsync(string script, RedisKey[] keys, RedisValue[] args, CancellationToken ct)
    {
        RedisResult? result = null;
        await _retry.RunAsync(async token =>
        {
            var redis = await ConnectAsync(token).ConfigureAwait(false);
            result = await redis.GetDatabase().ScriptEvaluateAsync(script, keys, args).WaitAsync(token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return result!;
    }

    private async Task<ConnectionMultiplexer> ConnectAsync(CancellationToken ct)
    {
        if (_redis is { } existing) { return existing; }
        await _connectGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return _redis ??= await ConnectionMultiplexer.ConnectAsync(RedisUrl.Parse(_url)).ConfigureAwait(false);
        }
        finally
        {
            _connectGate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null) { await _redis.DisposeAsync().ConfigureAwait(false); }
        _connectGate.Dispose();
    }
}
