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
root.Subcommands.Add(MockApiCommand.Create());
// Ctrl-C and SIGTERM cancel the command's token and leave it time to drain (StreamPipeline.DrainTimeout is 30 s);
// without a timeout here System.CommandLine 2.0 does not handle them at all and the process dies at once.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(45) }).ConfigureAwait(false);
