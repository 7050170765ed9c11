using System.CommandLine;
using Sluice.Connectors.Lake;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Metadata;
using Sluice.Core.Recipes;
using Sluice.Lake;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice recover</c>: a new metadata store for a data folder whose store was lost or damaged, its lake manifest rebuilt from the Parquet files.</summary>
internal static class RecoverCommand
{
    private const string Lost =
        "NOT recovered (they lived only in meta.db): API tokens (create new ones: sluice tokens create), dead letters, job history, " +
        "the checkpoints of other sources and sinks (CDC, pulls, Postgres and ClickHouse sinks start over from what their source still holds; " +
        "they are idempotent), the ingested-file ledger (files in processed/ are not taken in again, but the same file dropped again lands again), " +
        "file types added with `sluice filetypes add` (a recipe's own are synchronised at start), model state and views (rebuilt at the next model run), " +
        "and the reminders' send-once records (a reminder due again may be mailed again).";

    public static Command Create()
    {
        var force = new Option<bool>("--force") { Description = "Rebuild the lake manifest even though meta.db is healthy (its tokens, checkpoints and the rest are kept)" };
        var recipes = new Option<string[]>("--recipe") { Description = "Recipes whose lake sink checkpoints to restore (repeatable); default every recipe under the recipes folder", AllowMultipleArgumentsPerToken = true };
        var command = new Command("recover", "Rebuild a lost or damaged meta.db's lake manifest from the Parquet files under lake/; says what it cannot recover") { force, recipes };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            var data = CliContext.Folder(result);
            if (!Directory.Exists(data.Root))
            {
                throw new SluiceException($"no data folder at {data.Root}: nothing to recover (pass --data, or set SLUICE_DATA)");
            }

            using var runLocks = new CompositeDisposable(TakeRunLocks(data));
            var (state, detail) = MetadataStoreHealth.Inspect(data);
            switch (state)
            {
                case MetadataStoreState.Healthy when !result.GetValue(force):
                    throw new SluiceException($"the metadata store {data.MetadataPath} is healthy: `sluice recover` rebuilds a lost or damaged one; to rebuild its lake manifest from the files anyway (its tokens, checkpoints and the rest are kept), add --force");
                case MetadataStoreState.Healthy:
                    await Say($"{data.MetadataPath} is healthy; rebuilding its lake manifest from the files (--force)").ConfigureAwait(false);
                    break;
                case MetadataStoreState.Damaged:
                    await Say($"{detail}; kept it aside as {MetadataStoreHealth.MoveAside(data, TimeProvider.System)}, creating a new store").ConfigureAwait(false);
                    break;
                default:
                    await Say($"no metadata store at {data.MetadataPath}; creating a new one").ConfigureAwait(false);
                    break;
            }

            MetadataStore.ForRecovery(data);
            using var services = CliContext.Services(result);
            var recovery = new LakeRecovery(services.Lake);
            var garbage = services.Lake.Garbage();
            var tables = new List<RecoveredTable>();
            foreach (var (zone, table) in recovery.TableFolders())
            {
                ct.ThrowIfCancellationRequested();
                if (recovery.Scan(zone, table, garbage) is not { } found)
                {
                    continue;
                }

                tables.Add(found);
                await Say($"{zone}.{table}: {found.Files.Count:N0} file(s), {found.Rows:N0} rows, {found.Partitions:N0} partition(s){(found.Table.IsPartitioned ? $" by {found.Table.PartitionKey}" : "")}, {found.Table.Columns.Count} column(s){(found.Unreadable.Count > 0 ? $"; {found.Unreadable.Count} left out:" : "")}").ConfigureAwait(false);
                foreach (var problem in found.Unreadable)
                {
                    await Say($"  {problem}").ConfigureAwait(false);
                }
            }

            services.Lake.ReplaceManifest(tables);
            var recovered = tables.Where(t => t.Files.Count > 0).ToList();
            await Say($"lake manifest rebuilt: {recovered.Count} table(s), {recovered.Sum(t => t.Files.Count):N0} file(s), {recovered.Sum(t => t.Rows):N0} rows").ConfigureAwait(false);
            foreach (var line in LakeSinkCheckpointRecovery.Restore(services, await LoadRecipesAsync(result.GetValue(recipes)).ConfigureAwait(false)))
            {
                await Say(line).ConfigureAwait(false);
            }

            await Say(Lost).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    /// <summary>Every recipe's run lock on the folder: nothing may run while its store is replaced.</summary>
    private static List<IDisposable> TakeRunLocks(DataDirectory data)
    {
        var held = new List<IDisposable>();
        foreach (var path in Directory.Exists(data.LocksRoot) ? Directory.GetFiles(data.LocksRoot, "run-*.lock") : [])
        {
            if (ProcessLock.TryAcquire(path) is not { } taken)
            {
                held.ForEach(h => h.Dispose());
                throw new SluiceException($"'{Path.GetFileNameWithoutExtension(path)[4..]}' is running on {data.Root}: stop it before `sluice recover`");
            }

            held.Add(taken);
        }

        return held;
    }

    private sealed class CompositeDisposable(List<IDisposable> items) : IDisposable
    {
        public void Dispose() => items.ForEach(i => i.Dispose());
    }

    /// <summary>The named recipes, or every recipe under the recipes folder that loads (one that does not is named and skipped).</summary>
    private static async Task<IReadOnlyList<Recipe>> LoadRecipesAsync(string[]? names)
    {
        var all = names is { Length: > 0 }
            ? names
            : Directory.Exists(RecipeLoader.RecipesRoot)
                ? Directory.EnumerateDirectories(RecipeLoader.RecipesRoot).Where(d => File.Exists(Path.Combine(d, RecipeLoader.FileName))).Order(StringComparer.Ordinal).ToArray()
                : [];
        var loaded = new List<Recipe>();
        foreach (var name in all)
        {
            try
            {
                loaded.Add(CliContext.LoadRecipe(name));
            }
            catch (ConfigException e)
            {
                await Say($"recipe {name} does not load ({e.Errors.Count} problem(s), see sluice validate): its checkpoints are not restored").ConfigureAwait(false);
            }
        }

        return loaded;
    }

    private static Task Say(string line) => Console.Out.WriteLineAsync($"recover: {line}");
}
