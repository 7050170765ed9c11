using System.CommandLine;
using System.Globalization;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Hosting;
using Sluice.Lake;

namespace Sluice.Cli.Commands;

internal static class DlqCommands
{
    public static Command Create()
    {
        var command = new Command("dlq", "The dead-letter store: what could not be processed, with why and where");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Replay());
        return command;
    }

    private static Command List()
    {
        var source = new Option<string?>("--source") { Description = "Only letters whose source starts with this (e.g. files:vehicle-files)" };
        var status = new Option<string>("--status") { Description = "pending, replayed or all", DefaultValueFactory = _ => DeadLetterStore.Pending };
        var limit = new Option<int>("--limit") { Description = "Letters shown at most", DefaultValueFactory = _ => 100 };
        var format = new Option<QueryFormat>("--format") { Description = "table, csv or json", DefaultValueFactory = _ => QueryFormat.Table };
        var command = new Command("list", "List dead letters (pending ones by default)") { source, status, limit, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.Services(result);
            var st = result.GetValue(status);
            var letters = services.DeadLetters.List(result.GetValue(source), st == "all" ? null : st, result.GetValue(limit));
            var rows = letters.Select(l => new object?[] { l.Id, l.CreatedAt.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), l.Source, l.Status, l.Position, l.Reason }).ToList();
            await Console.Out.WriteAsync(QueryResultFormatter.Format(new QueryResult(["id", "created_utc", "source", "status", "position", "reason"], rows), result.GetValue(format))).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Show()
    {
        var id = new Argument<long>("id") { Description = "Dead-letter id (see dlq list)" };
        var command = new Command("show", "Show one dead letter whole, payload included") { id };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.Services(result);
            var letter = services.DeadLetters.Get(result.GetValue(id)) ?? throw new SluiceException($"no dead letter with id {result.GetValue(id)}.");
            await Console.Out.WriteLineAsync(string.Join('\n',
                $"id:       {letter.Id}",
                $"source:   {letter.Source}",
                $"status:   {letter.Status}{(letter.ReplayedAt is { } r ? $" at {r:yyyy-MM-dd HH:mm:ss}Z" : "")}",
                $"created:  {letter.CreatedAt:yyyy-MM-dd HH:mm:ss}Z",
                $"position: {letter.Position}",
                $"reason:   {letter.Reason}",
                "payload:",
                letter.Payload ?? "(none)")).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Replay()
    {
        var ids = new Argument<long[]>("id") { Description = "Dead-letter ids to replay", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Replay every pending letter (of --source, when given)" };
        var source = new Option<string?>("--source") { Description = "With --all: only letters whose source starts with this" };
        var command = new Command("replay", "Process dead letters again; those that succeed are marked replayed, the others keep their newest reason") { ids, all, source };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.Services(result);
            var chosen = result.GetValue(all)
                ? services.DeadLetters.List(result.GetValue(source), DeadLetterStore.Pending, int.MaxValue)
                : (result.GetValue(ids) ?? []).Select(i => services.DeadLetters.Get(i) ?? throw new SluiceException($"no dead letter with id {i}.")).ToList();
            if (chosen.Count == 0)
            {
                throw new SluiceException("nothing to replay: name letter ids, or use --all.");
            }

            var replayers = new Dictionary<string, List<IDeadLetterReplayer>>(StringComparer.Ordinal);
            var hosts = new List<RecipeHost>();
            int ok = 0, failed = 0;
            try
            {
                foreach (var letter in chosen)
                {
                    if (letter.Status != DeadLetterStore.Pending)
                    {
                        await Console.Out.WriteLineAsync($"{letter.Id}: already {letter.Status}, skipped").ConfigureAwait(false);
                        continue;
                    }

                    var recipe = RecipeOf(letter.Source);
                    if (!replayers.TryGetValue(recipe, out var list))
                    {
                        var definition = CliContext.LoadRecipe(recipe);
                        var host = new RecipeHost(definition, services);
                        hosts.Add(host);
                        // Stream pipelines replay for their source and their sinks alike; a job can own letters too (a reminder's failed delivery).
                        replayers[recipe] = list = host.Sources.OfType<IDeadLetterReplayer>()
                            .Concat(definition.Jobs.Select(j => j.Factory.Create(services)).OfType<IDeadLetterReplayer>()).ToList();
                    }

                    var replayer = list.FirstOrDefault(r => r.CanReplay(letter))
                        ?? throw new SluiceException($"letter {letter.Id}: nothing in recipe '{recipe}' can replay source '{letter.Source}'.");
                    var error = await replayer.ReplayAsync(letter, ct).ConfigureAwait(false);
                    if (error is null)
                    {
                        services.DeadLetters.MarkReplayed(letter.Id);
                        ok++;
                        await Console.Out.WriteLineAsync($"{letter.Id}: replayed").ConfigureAwait(false);
                    }
                    else
                    {
                        services.DeadLetters.UpdateReason(letter.Id, error);
                        failed++;
                        await Console.Out.WriteLineAsync($"{letter.Id}: still failing: {error}").ConfigureAwait(false);
                    }
                }
            }
            finally
            {
                foreach (var host in hosts) { await host.DisposeAsync().ConfigureAwait(false); }
            }

            await Console.Out.WriteLineAsync($"{ok} replayed, {failed} still failing").ConfigureAwait(false);
            return failed == 0 ? 0 : 1;
        }));
        return command;
    }

    /// <summary>Sources are <c>kind:recipe</c> or <c>kind:recipe/part</c>.</summary>
    private static string RecipeOf(string source)
    {
        var colon = source.IndexOf(':', StringComparison.Ordinal);
        var rest = colon >= 0 ? source[(colon + 1)..] : source;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return slash >= 0 ? rest[..slash] : rest;
    }
}
