using System.CommandLine;
using System.Globalization;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Hosting;
using Sluice.Core.Recipes;
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
        command.Subcommands.Add(Edit());
        command.Subcommands.Add(Discard());
        return command;
    }

    private static Command List()
    {
        var source = new Option<string?>("--source") { Description = "Only letters whose source starts with this (e.g. files:vehicle-files)" };
        var status = new Option<string>("--status") { Description = "pending, replayed, discarded or all", DefaultValueFactory = _ => DeadLetterStore.Pending };
        var limit = new Option<int>("--limit") { Description = "Letters shown at most", DefaultValueFactory = _ => 100 };
        var format = CliOutput.FormatOption();
        var command = new Command("list", "List dead letters (pending ones by default)") { source, status, limit, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.RecipeServices(result, null);
            var st = result.GetValue(status);
            var letters = services.DeadLetters.List(result.GetValue(source), st == "all" ? null : st, result.GetValue(limit));
            var rows = letters.Select(l => new object?[] { l.Id, new UtcInstant(l.CreatedAt), l.Source, l.Status, l.Position, l.Reason }).ToList();
            await CliOutput.WriteAsync(result, new QueryResult(["id", "created_utc", "source", "status", "position", "reason"], rows), result.GetValue(format)).ConfigureAwait(false);
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
            using var services = CliContext.ExistingServices(result);
            var letter = services.DeadLetters.Get(result.GetValue(id)) ?? throw new SluiceException($"no dead letter with id {result.GetValue(id)}.");
            await Console.Out.WriteLineAsync(string.Join('\n',
                $"id:       {letter.Id}",
                $"source:   {letter.Source}",
                $"status:   {letter.Status}{(letter.ReplayedAt is { } r ? $" at {r:yyyy-MM-dd HH:mm:ss}Z" : "")}{(letter.DiscardReason is { } d ? $": {d}" : "")}",
                $"created:  {letter.CreatedAt:yyyy-MM-dd HH:mm:ss}Z",
                $"position: {letter.Position}",
                $"reason:   {letter.Reason}",
                "payload:",
                letter.Payload ?? "(none)")).ConfigureAwait(false);
            foreach (var edit in services.DeadLetters.Edits(letter.Id))
            {
                await Console.Out.WriteLineAsync($"edited {edit.At:yyyy-MM-dd HH:mm:ss}Z by {edit.By}{(edit.Note is { } n ? $": {n}" : "")}; before:\n{edit.Before ?? "(none)"}").ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static Command Replay()
    {
        var ids = new Argument<long[]>("id") { Description = "Dead-letter ids to replay", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Replay every pending letter (of --source, when given)" };
        var source = new Option<string?>("--source") { Description = "With --all: only letters whose source starts with this" };
        var failOn = DeadLetterReport.FailOption();
        var command = new Command("replay", "Process dead letters again; those that succeed are marked replayed, the others keep their newest reason") { ids, all, source, failOn };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.Services(result);
            // New letters a replay leads to (a replayed event a sink then dead-letters), not the replayed letters themselves.
            using var letters = DeadLetterTally.Begin();
            if (!result.GetValue(all) && result.GetValue(ids) is not { Length: > 0 })
            {
                throw new SluiceException("nothing to replay: name letter ids, or use --all.");
            }

            var chosen = result.GetValue(all)
                ? services.DeadLetters.List(result.GetValue(source), DeadLetterStore.Pending, int.MaxValue)
                : result.GetValue(ids)!.Select(i => services.DeadLetters.Get(i) ?? throw new SluiceException($"no dead letter with id {i}.")).ToList();
            if (chosen.Count == 0)
            {
                // Nothing waiting is the good outcome of --all, not a mistake of the caller.
                await Console.Out.WriteLineAsync(result.GetValue(source) is { } from ? $"no pending dead letters from {from}: nothing to replay" : "no pending dead letters: nothing to replay").ConfigureAwait(false);
                return 0;
            }

            int ok = 0, failed = 0;
            foreach (var group in chosen.GroupBy(l => l.Recipe, StringComparer.Ordinal))
            {
                var pending = new List<DeadLetter>();
                foreach (var letter in group)
                {
                    if (letter.Status == DeadLetterStore.Pending) { pending.Add(letter); }
                    else { await Console.Out.WriteLineAsync($"{letter.Id}: already {letter.Status}, skipped").ConfigureAwait(false); }
                }

                if (pending.Count == 0) { continue; }
                var definition = CliContext.LoadRecipe(group.Key);
                var results = CliContext.IsCluster(result)
                    ? await LetterReplay.ReplayInClusterAsync(services, definition, Cluster.ClusterOptions.FromEnvironment(Cluster.ClusterSettings.Variables(definition, Environment.GetEnvironmentVariable)), pending, ct).ConfigureAwait(false)
                    : await LetterReplay.ReplayAsync(services, definition, pending, notice => Console.Error.WriteLine(notice), ct).ConfigureAwait(false);
                foreach (var (id, error) in results)
                {
                    if (error is null) { ok++; } else { failed++; }
                    await Console.Out.WriteLineAsync(error is null ? $"{id}: replayed" : $"{id}: still failing: {error}").ConfigureAwait(false);
                }
            }

            await Console.Out.WriteLineAsync($"{ok} replayed, {failed} still failing").ConfigureAwait(false);
            var lettered = await DeadLetterReport.FinishAsync(letters, result.GetValue(failOn)).ConfigureAwait(false);
            return failed == 0 ? lettered : 1;
        }));
        return command;
    }

    private static Command Edit()
    {
        var id = new Argument<long>("id") { Description = "Dead-letter id (a pending one: see dlq list)" };
        var raw = new Option<string?>("--raw") { Description = "The record's new text" };
        var file = new Option<string?>("--file") { Description = "Read the record's new text from this file ('-' for stdin)" };
        var note = new Option<string?>("--note") { Description = "Why it was changed (kept in its edit history)" };
        var command = new Command("edit", "Replace a pending letter's payload before replaying it; the old payload is kept in its edit history (dlq show)") { id, raw, file, note };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var text = (result.GetValue(raw), result.GetValue(file)) switch
            {
                ({ } r, null) => r,
                (null, "-") => await Console.In.ReadToEndAsync(ct).ConfigureAwait(false),
                (null, { } f) => await File.ReadAllTextAsync(f, ct).ConfigureAwait(false),
                _ => throw new SluiceException("give the new text with --raw or --file, one of them."),
            };
            using var services = CliContext.ExistingServices(result);
            var (letter, refused) = services.DeadLetters.Edit(result.GetValue(id), text, $"{Environment.UserName} (sluice dlq edit)", result.GetValue(note));
            if (letter is null) { throw new SluiceException($"no dead letter with id {result.GetValue(id)}."); }
            if (refused is not null) { throw new SluiceException(refused + "."); }
            await Console.Out.WriteLineAsync($"{letter.Id}: payload changed ({services.DeadLetters.Edits(letter.Id).Count} edit(s)); replay it with: sluice dlq replay {letter.Id}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Discard()
    {
        var ids = new Argument<long[]>("id") { Description = "Dead-letter ids to set aside", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Every pending letter (of --source, when given)" };
        var source = new Option<string?>("--source") { Description = "With --all: only letters whose source starts with this" };
        var reason = new Option<string>("--reason") { Description = "Why they are set aside (kept with them)", Required = true };
        var command = new Command("discard", "Set pending letters aside with a reason: kept with status discarded, never replayed, never deleted") { ids, all, source, reason };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.ExistingServices(result);
            var why = result.GetValue(reason)!;
            if (string.IsNullOrWhiteSpace(why)) { throw new SluiceException("--reason: say why the letters are set aside."); }
            long discarded;
            if (result.GetValue(all))
            {
                discarded = services.DeadLetters.Discard(new DeadLetterFilter(Source: result.GetValue(source)), why);
            }
            else if (result.GetValue(ids) is { Length: > 0 } chosen)
            {
                foreach (var i in chosen) { _ = services.DeadLetters.Get(i) ?? throw new SluiceException($"no dead letter with id {i}."); }
                discarded = services.DeadLetters.Discard(chosen, why);
            }
            else
            {
                throw new SluiceException("nothing to discard: name letter ids, or use --all.");
            }

            await Console.Out.WriteLineAsync($"{discarded} discarded").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
