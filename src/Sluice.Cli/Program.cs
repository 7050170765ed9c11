using System.Runtime.InteropServices;
using System.CommandLine;
using Sluice.Cli;
using Sluice.Cli.Commands;

// First, before anything opens a socket: socket completions run inline on the socket thread (off in cluster mode; a
// value the user set is kept). docs/ARCHITECTURE.md, "Socket completions run inline"; docs/BENCHMARKS.md, "bench cdc".
Sluice.Core.IO.InlineSocketCompletions.Choose(args);

var root = new RootCommand("Sluice: ingest, land, validate, transform and serve data in one program.");
root.Options.Add(CliContext.Data);
root.Options.Add(CliContext.Verbose);
root.Options.Add(CliOutput.Wide);
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(ValidateCommand.Create());
root.Subcommands.Add(TestCommand.Create());
root.Subcommands.Add(InitCommand.Create());
root.Subcommands.Add(QueryCommand.Create());
root.Subcommands.Add(JobCommands.Create());
root.Subcommands.Add(JobCommands.CreateBackfill());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(DlqCommands.Create());
root.Subcommands.Add(FileTypesCommands.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(ModelsCommands.Create());
root.Subcommands.Add(MockApiCommand.Create());
root.Subcommands.Add(TokensCommands.Create());
root.Subcommands.Add(RecoverCommand.Create());
root.Subcommands.Add(LandingCommands.Create());
root.Subcommands.Add(StatusCommand.Create());
root.Subcommands.Add(TapCommand.Create());
root.Subcommands.Add(CdcCommands.Create());
root.Subcommands.Add(DocsCommands.Create());
// The commands that read or write state take --cluster (the cluster's shared store); run has its own (it also joins the log).
foreach (var stateful in root.Subcommands.Where(c => c.Name is "tokens" or "status" or "dlq" or "job" or "backfill" or "models" or "query" or "cdc"))
{
    stateful.Options.Add(CliContext.Cluster);
}
// Ctrl-C (SIGINT) and SIGTERM cancel the command's token, and the process exits when the command has shut down
// with its own bounded drains; the parser's handler would instead cut it short after two seconds. A second signal
// exits at once, as a crash would: what was not committed is read again at the next start.
using var stop = new CancellationTokenSource();
var signals = 0;
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    if (Interlocked.Increment(ref signals) == 1)
    {
        // On a thread of its own: the token's callbacks start the stop, and one that blocks must neither hold the
        // signal thread (a second signal must get through) nor take a pool thread; the watchdog bounds the rest.
        new Thread(CancelCommand) { IsBackground = true, Name = "sluice stop" }.Start();
        new Thread(ExitCodes.Watchdog) { IsBackground = true, Name = "sluice stop watchdog" }.Start();
        return;
    }

    ExitCodes.Forced(Sluice.Hosting.RecipeHost.StillStopping());
}

void CancelCommand()
{
    try
    {
        stop.Cancel();
    }
    catch (AggregateException)
    {
        // A callback that threw: the others ran all the same, and the stop goes on; on this thread it would kill the process.
    }
}

using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null };
var parsed = root.Parse(args);
if (ParseErrors.Rewrite(parsed) is { } errors)
{
    foreach (var error in errors) { await Console.Error.WriteLineAsync(error).ConfigureAwait(false); }
    return 1;
}

// Checked before any work starts: a long command would otherwise fail only when its first progress is due.
if (CliProgress.Problem() is { } progressProblem)
{
    await Console.Error.WriteLineAsync("error: " + progressProblem).ConfigureAwait(false);
    return 1;
}

return await parsed.InvokeAsync(invocation, stop.Token).ConfigureAwait(false);
