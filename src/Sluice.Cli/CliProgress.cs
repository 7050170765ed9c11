using System.Globalization;
using Sluice.Core.Text;
using Spectre.Console;

namespace Sluice.Cli;

/// <summary>
/// Progress of a long command with its real total: on a terminal a bar with percentage and time remaining; otherwise
/// (a pipe, a log file, CI) a plain line every <see cref="LineEvery"/> with the same figures. Nothing is shown for work
/// that ends within <see cref="ShowAfter"/>, so short commands print exactly what they always did.
/// </summary>
internal static class CliProgress
{
    /// <summary>How often a plain line is printed (<c>SLUICE_PROGRESS_SECONDS</c> overrides, for scripts that want more or fewer).</summary>
    public static TimeSpan LineEvery { get; } = Seconds("SLUICE_PROGRESS_SECONDS", 5);

    public static TimeSpan ShowAfter { get; } = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, LineEvery.Ticks));

    /// <summary>Whether a bar can be drawn (standard output is an interactive terminal).</summary>
    public static bool Terminal => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Waits for <paramref name="work"/>, showing <paramref name="poll"/>'s figures (done, total, unit) while it runs; null figures show nothing.</summary>
    public static async Task<T> ShowAsync<T>(string title, Func<(long Done, long Total, string Unit)?> poll, Task<T> work)
    {
        ArgumentNullException.ThrowIfNull(poll);
        ArgumentNullException.ThrowIfNull(work);
        if (await Task.WhenAny(work, Task.Delay(ShowAfter)).ConfigureAwait(false) == work) { return await work.ConfigureAwait(false); }
        if (Terminal)
        {
            return await Bar().StartAsync(async ctx =>
            {
                var task = ctx.AddTask(title);
                while (!work.IsCompleted)
                {
                    if (poll() is { } f) { task.MaxValue = Math.Max(1, f.Total); task.Value = f.Done; task.Description = $"{title} ({f.Unit})"; }
                    await Task.WhenAny(work, Task.Delay(250)).ConfigureAwait(false);
                }

                return await work.ConfigureAwait(false);
            }).ConfigureAwait(false);
        }

        var estimate = new ProgressEstimate(TimeProvider.System);
        var printed = false;
        while (!work.IsCompleted)
        {
            if (poll() is { } f)
            {
                await Console.Out.WriteLineAsync(estimate.Line(title, f.Done, f.Total, f.Unit)).ConfigureAwait(false);
                printed = true;
            }

            await Task.WhenAny(work, Task.Delay(LineEvery)).ConfigureAwait(false);
        }

        if (printed && poll() is { } last) { await Console.Out.WriteLineAsync(estimate.Line(title, last.Done, last.Total, last.Unit)).ConfigureAwait(false); }
        return await work.ConfigureAwait(false);
    }

    /// <summary>A bar with what it is doing, percentage, time remaining and a spinner (Spectre shows no time remaining by default).</summary>
    public static Progress Bar() => AnsiConsole.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn());

    private static TimeSpan Seconds(string variable, double fallback) =>
        double.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(fallback);
}
