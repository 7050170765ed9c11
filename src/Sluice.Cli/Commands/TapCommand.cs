using System.CommandLine;
using Sluice.Core;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice tap</c>: a live sample of the records flowing through a running pipeline, as JSON lines (read-only).</summary>
internal static class TapCommand
{
    public static Command Create()
    {
        var pipeline = new Argument<string>("pipeline") { Description = "<recipe>/<pipeline>, for example engagement-cdc/engagement" };
        var sink = new Option<string?>("--sink") { Description = "Show what this sink committed instead of what the source read" };
        var limit = new Option<int>("--limit", "-n") { Description = $"Stop after this many records (1-{Serving.Management.ManagementEndpoints.MaxTapLimit})", DefaultValueFactory = _ => Serving.Management.ManagementEndpoints.DefaultTapLimit };
        var command = new Command("tap", "Print records flowing through a running pipeline as they pass (a sample: a slow reader misses some, the pipeline never waits)") { pipeline, sink, limit };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var name = result.GetValue(pipeline)!;
            if (name.Split('/') is not [{ Length: > 0 }, { Length: > 0 }]) { throw new SluiceException($"'{name}' is not <recipe>/<pipeline> (for example engagement-cdc/engagement)."); }
            using var client = ManagementClient.Connect(CliContext.Folder(result));
            var process = await client.RunningAsync(name, ct).ConfigureAwait(false)
                ?? throw new SluiceException($"no running process of {CliContext.Folder(result).Root} has the pipeline '{name}'; see sluice status");
            try
            {
                await foreach (var line in client.TapAsync(process, name, result.GetValue(sink), result.GetValue(limit), ct).ConfigureAwait(false))
                {
                    await Console.Out.WriteLineAsync(line).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C ends a tap; that is how it is meant to stop.
            }

            return 0;
        }));
        return command;
    }
}
