using System.CommandLine;
using System.Globalization;
using Sluice.Core;
using Sluice.Core.DeadLetters;
using Sluice.Core.Hosting;
using Sluice.Core.Recipes;
using Sluice.Lake;

namespace Sluice.Cli.Commands;

internal static class DlqCommands
{
    /// <summary>How long a replay handed to a running instance may take before the command gives up on it.</summary>
    private static readonly TimeSpan ForwardTimeout = TimeSpan.FromSeconds(60);

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
        var format = CliOutput.FormatOption();
        var command = new Command("list", "List dead letters (pending ones by default)") { source, status, limit, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.ExistingServices(result);
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
            foreach (var group in chosen.GroupBy(l => RecipeOf(l.Source), StringComparer.Ordinal))
            {
                var pending = new List<DeadLetter>();
                foreach (var letter in group)
                {
                    if (letter.Status == DeadLetterStore.Pending) { pending.Add(letter); }
                    else { await Console.Out.WriteLineAsync($"{letter.Id}: already {letter.Status}, skipped").ConfigureAwait(false); }
                }

                if (pending.Count == 0) { continue; }
                var definition = CliContext.LoadRecipe(group.Key);
                // While a run or demo of the recipe holds its run lock, that process alone may write the recipe's state
                // (a stream's landing log): it is asked to do the replay. Otherwise this process holds the lock meanwhile.
                using var runLock = ProcessLock.TryAcquire(Path.Combine(services.Data.LocksRoot, $"run-{definition.Name}.lock"));
                var results = runLock is null
                    ? await ForwardAsync(services, definition.Name, pending, ct).ConfigureAwait(false)
                    : await ReplayHereAsync(services, definition, pending, ct).ConfigureAwait(false);
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

    private static async Task<List<(long Id, string? Error)>> ReplayHereAsync(EngineServices services, Recipe definition, List<DeadLetter> letters, CancellationToken ct)
    {
        var results = new List<(long, string?)>();
        var host = new RecipeHost(definition, services);
        await using (host.ConfigureAwait(false))
        {
            var replayers = host.CreateReplayers();
            foreach (var letter in letters)
            {
                results.Add((letter.Id, await DeadLetterReplays.ReplayOneAsync(services.DeadLetters, replayers, letter, definition.Name, ct).ConfigureAwait(false)));
            }
        }

        return results;
    }

    /// <summary>Hands the letters to the running instance and waits for its answers (a bounded wait: it may be a run that is just ending).</summary>
    private static async Task<List<(long Id, string? Error)>> ForwardAsync(EngineServices services, string recipe, List<DeadLetter> letters, CancellationToken ct)
    {
        var requests = new ReplayRequests(services.Data, recipe);
        foreach (var letter in letters) { requests.Submit(letter.Id); }
        await Console.Error.WriteLineAsync($"'{recipe}' is running on {services.Data.Root}: handing {letters.Count} letter(s) to it ...").ConfigureAwait(false);
        var results = new List<(long, string?)>();
        var waiting = letters.Select(l => l.Id).ToList();
        var deadline = services.Time.GetUtcNow() + ForwardTimeout;
        while (waiting.Count > 0)
        {
            foreach (var id in waiting.ToList())
            {
                var (done, error) = requests.TakeOutcome(id);
                if (done)
                {
                    results.Add((id, error));
                    waiting.Remove(id);
                }
            }

            if (waiting.Count == 0) { break; }
            if (services.Time.GetUtcNow() > deadline)
            {
                foreach (var id in waiting)
                {
                    var why = requests.Withdraw(id)
                        ? $"the running instance of '{recipe}' did not take the request within {ForwardTimeout.TotalSeconds:0} s (a run --once that is ending?); try again"
                        : $"the running instance of '{recipe}' took the request but gave no answer within {ForwardTimeout.TotalSeconds:0} s; see 'sluice dlq show {id}'";
                    results.Add((id, why));
                }

                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), services.Time, ct).ConfigureAwait(false);
        }

        return results;
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
