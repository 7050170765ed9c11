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
root.Subcommands.Add(ModelsCommands.Create());
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
