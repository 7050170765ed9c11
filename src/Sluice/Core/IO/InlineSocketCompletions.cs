using System.Net.Sockets;
using System.Reflection;

namespace Sluice.Core.IO;

/// <summary>
/// Runs the continuation of an awaited socket operation on .NET's socket (epoll) thread that saw the event, instead of
/// queuing one thread-pool work item per event. <c>bench cdc</c> showed that queued hop (an epoll wake-up plus a pool
/// item per segment the WAL sender flushes) to be most of Sluice's CPU per change (docs/BENCHMARKS.md, "bench cdc",
/// cdcinline24); inline, it is gone. The price is a rule for all code (docs/ARCHITECTURE.md, "Socket completions run
/// inline"): nothing may block after a socket await without first leaving the socket thread.
/// </summary>
public static class InlineSocketCompletions
{
    /// <summary>The runtime's switch (System.Net.Sockets reads it once, when its engine first starts).</summary>
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Set beside <see cref="Variable"/> when Sluice chose its value, so that a Sluice process started by another (a
    /// benchmark's workers) chooses again for its own command instead of taking the parent's choice for the user's.
    /// </summary>
    public const string ChosenBySluice = "SLUICE_SOCKET_COMPLETIONS_CHOSEN";

    /// <summary>
    /// Sets the switch for this process and the processes it starts: on, except for a command in cluster mode; a
    /// value the user set (<c>0</c> included) is kept. Must run before anything opens a socket: the CLI's first statement.
    /// </summary>
    public static void Choose(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var value = Decide(args.Contains("--cluster"), Environment.GetEnvironmentVariable(Variable), Environment.GetEnvironmentVariable(ChosenBySluice));
        if (value is null) { return; }
        Environment.SetEnvironmentVariable(Variable, value);
        Environment.SetEnvironmentVariable(ChosenBySluice, "1");
    }

    /// <summary>
    /// The value to set, or null to keep the user's. Cluster mode stays on the thread-pool hop: its shared metadata
    /// store is synchronous Npgsql, called from async code throughout, and a synchronous call on a socket that was used
    /// asynchronously (Npgsql connects without blocking, so every one is) waits for the socket thread to see it ready;
    /// on that thread itself it waits until its timeout (docs/ARCHITECTURE.md, "Socket completions run inline").
    /// </summary>
    public static string? Decide(bool cluster, string? current, string? chosenBySluice) =>
        current is not null && chosenBySluice is null ? null : cluster ? "0" : "1";

    /// <summary>
    /// What the socket engine of this process actually does (its own flag, read once at its start), or null when the
    /// runtime has no such flag (Windows, or a runtime that renamed it): proof that the switch took effect.
    /// </summary>
    public static bool? InEffect() =>
        typeof(Socket).Assembly.GetType("System.Net.Sockets.SocketAsyncEngine")
            ?.GetField("InlineSocketCompletionsEnabled", BindingFlags.NonPublic | BindingFlags.Static)
            ?.GetValue(null) as bool?;

    /// <summary>
    /// Awaited before blocking work (a synchronous database or socket call, a wait on a task, an fsync) in code that may
    /// have resumed from a socket await: the rest runs on a pool thread. A synchronous call on a socket that was used
    /// asynchronously waits for the socket thread to see it ready, so on the socket thread itself it would never return.
    /// </summary>
    /// <remarks>
    /// Always a hop through the pool's queue, never skipped by asking the thread what it is beforehand; and then once
    /// more while the code did not land on a pool worker. Measured (a loopback socket, inline completions on): the
    /// socket thread reads <see cref="Thread.IsThreadPoolThread"/> false, pool workers true; and once in five tries the
    /// continuation after <c>Task.Yield</c> ran on the socket thread again. CI's `sluice test sales-warehouse
    /// --servers` hang (stop 28) was that: <c>PgSourceMirror</c>'s synchronous COPY dispose on the socket thread after a
    /// single <c>Task.Yield</c>. At most three hops: code called from a thread of its own (not the pool's, not the
    /// socket's) goes on after them. One hop per call as a rule, made per batch or per job at most.
    /// </remarks>
    public static async ValueTask LeaveSocketThreadAsync()
    {
        for (var hop = 0; hop < 3; hop++)
        {
            await Task.Yield();
            if (Thread.CurrentThread.IsThreadPoolThread) { return; }
        }
    }

    /// <summary>The mode in words, for a log line or a benchmark's header.</summary>
    public static string Describe() => InEffect() switch
    {
        true => "inline (on the socket thread)",
        false => "queued to the thread pool",
        null => "unknown (no socket engine flag in this runtime)",
    };
}
