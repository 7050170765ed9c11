using System.Globalization;
using Sluice.Core.Text;
using Spectre.Console;

namespace Sluice.Cli;

/// <summary>
/// Progress of a long command with its real total, on standard error so that a command's output piped or redirected
/// stays exactly its result: when standard error is a terminal a bar with percentage and time remaining; otherwise (a
/// pipe, a log file, CI) a plain line every <see cref="LineEvery"/> with the same figures. <c>SLUICE_PROGRESS</c>
/// (<c>auto</c>, <c>bar</c>, <c>lines</c>, <c>none</c>) overrides the choice. Nothing is shown for work that ends
/// within <see cref="ShowAfter"/>, so short commands print exactly what they always did.
/// </summary>
internal static class CliProgress
{
    public const string ModeVariable = "SLUICE_PROGRESS";

    /// <summary>How progress is shown, from <see cref="ModeVariable"/> (unset or empty: <see cref="ProgressMode.Auto"/>).</summary>
    public static ProgressMode Mode => ModeOf(Environment.GetEnvironmentVariable(ModeVariable));

    /// <summary>Where progress is drawn: standard error, with Spectre's view of whether it is a terminal.</summary>
    public static IAnsiConsole Console { get; } = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Error) });

    /// <summary>Where plain progress lines go: standard error, or nowhere with <c>SLUICE_PROGRESS=none</c>.</summary>
    public static TextWriter Lines => Mode == ProgressMode.None ? TextWriter.Null : System.Console.Error;

    /// <summary>How often a plain line is printed (<c>SLUICE_PROGRESS_SECONDS</c> overrides, for scripts that want more or fewer).</summary>
    public static TimeSpan LineEvery { get; } = Seconds("SLUICE_PROGRESS_SECONDS", 5);

    public static TimeSpan ShowAfter { get; } = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, LineEvery.Ticks));

    /// <summary>Whether a bar is drawn: asked for, or (auto) standard error is an interactive terminal.</summary>
    public static bool Terminal => Mode == ProgressMode.Bar
        || (Mode == ProgressMode.Auto && !System.Console.IsErrorRedirected && Console.Profile.Capabilities.Interactive);

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
                await Lines.WriteLineAsync(estimate.Line(title, f.Done, f.Total, f.Unit)).ConfigureAwait(false);
                printed = true;
            }

            await Task.WhenAny(work, Task.Delay(LineEvery)).ConfigureAwait(false);
        }

        if (printed && poll() is { } last) { await Lines.WriteLineAsync(estimate.Line(title, last.Done, last.Total, last.Unit)).ConfigureAwait(false); }
        return await work.ConfigureAwait(false);
    }

    /// <summary>A bar with what it is doing, percentage, time remaining and a spinner (Spectre shows no time remaining by default).</summary>
    public static Progress Bar() => Console.Progress()
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn());

    /// <summary>What is wrong with <see cref="ModeVariable"/>'s value, or null when it is a mode.</summary>
    public static string? Problem()
    {
        try
        {
            _ = Mode;
            return null;
        }
        catch (Core.SluiceException e)
        {
            return e.Message;
        }
    }

    private static ProgressMode ModeOf(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => ProgressMode.Auto,
        "bar" => ProgressMode.Bar,
        "lines" => ProgressMode.Lines,
        "none" => ProgressMode.None,
        _ => throw new Core.SluiceException($"{ModeVariable}: '{value}' is not a progress mode: auto (a bar when standard error is a terminal, else lines), bar, lines or none."),
    };

    private static TimeSpan Seconds(string variable, double fallback) =>
        double.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0
            ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(fallback);
}

/// <summary>How a long command shows its progress (<c>SLUICE_PROGRESS</c>).</summary>
internal enum ProgressMode
{
    /// <summary>A bar when standard error is a terminal, plain lines otherwise.</summary>
    Auto,

    /// <summary>Always a bar (a terminal Spectre does not recognise).</summary>
    Bar,

    /// <summary>Always plain lines.</summary>
    Lines,

    /// <summary>Nothing.</summary>
    None,
}
