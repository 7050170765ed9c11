using Sluice.Cli.Commands;
using Sluice.Core.Recipes;
using Sluice.Core.Text;
using Spectre.Console;

namespace Sluice.Cli;

/// <summary>
/// Progress of a benchmark's phases (on standard error, as <see cref="CliProgress"/>): on a terminal one bar per phase
/// (percentage, time remaining) with the benchmark's own lines written above the bars when they go to the same
/// terminal; otherwise the benchmark's lines to standard output as they are and, per phase, a plain progress line at
/// most every <see cref="CliProgress.LineEvery"/> and when it ends.
/// </summary>
internal static class BenchProgress
{
    /// <summary>Runs <paramref name="run"/> with the writer for its lines and a reporter per phase title.</summary>
    public static async Task<T> RunAsync<T>(Func<TextWriter, Func<string, IProgress<JobProgress>>, Task<T>> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!CliProgress.Terminal) { return await run(Console.Out, title => Lines(title, TimeProvider.System, CliProgress.Lines)).ConfigureAwait(false); }
        return await CliProgress.Bar().AutoClear(false).StartAsync(async ctx =>
        {
            // The report's lines go above the bars only when both reach the same terminal; redirected, they go to the file as they are.
            using var lines = Console.IsOutputRedirected ? null : new ConsoleLines();
            return await run(lines ?? Console.Out, title =>
            {
                var task = ctx.AddTask(title);
                return new Progress<JobProgress>(j =>
                {
                    task.MaxValue = Math.Max(1, j.Total);
                    task.Value = j.Done;
                    task.Description = $"{title} ({j.What})";
                });
            }).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    /// <summary>A phase's plain lines: the first report, then at most one every <see cref="CliProgress.LineEvery"/>, and the last (done = total).</summary>
    internal static IProgress<JobProgress> Lines(string title, TimeProvider time, TextWriter output)
    {
        var estimate = new ProgressEstimate(time);
        DateTimeOffset? last = null;
        var ended = false;
        return new SynchronousProgress<JobProgress>(j =>
        {
            var now = time.GetUtcNow();
            var line = estimate.Line(title, j.Done, j.Total, j.What);
            if (ended || (last is { } l && now - l < CliProgress.LineEvery && j.Done < j.Total)) { return; }
            (last, ended) = (now, j.Done >= j.Total);
            output.WriteLine(line);
        });
    }

    /// <summary>Lines written while bars are drawn go through Spectre, which draws them above the bars.</summary>
    private sealed class ConsoleLines : TextWriter
    {
        public override System.Text.Encoding Encoding => Console.OutputEncoding;

        public override void WriteLine(string? value) => CliProgress.Console.WriteLine(value ?? "");

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }

        public override void Write(char value) => CliProgress.Console.Write(value.ToString());
    }
}
