using System.CommandLine;
using Sluice.Cli;
using Sluice.Cli.Commands;

var root = new RootCommand("Sluice: ingest, land, validate, transform and serve data in one program.");
root.Options.Add(CliContext.Data);
root.Options.Add(CliContext.Verbose);
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(ValidateCommand.Create());
root.Subcommands.Add(QueryCommand.Create());
root.Subcommands.Add(JobCommands.Create());
root.Subcommands.Add(JobCommands.CreateBackfill());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(DlqCommands.Create());
root.Subcommands.Add(FileTypesCommands.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(TokensCommands.Create());
// Ctrl-C / SIGTERM cancel the command's token; System.CommandLine's default of 2 s before it ends the process is shorter
// than an orderly stop (HTTP requests in flight, sink drains, checkpoints), which is bounded by the engine's own timeouts.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) }).ConfigureAwait(false);
