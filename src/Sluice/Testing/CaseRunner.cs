using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using Npgsql;
using Sluice.Connectors.Files;
using Sluice.Connectors.Http.Ingest;
using Sluice.Connectors.Postgres;
using Sluice.Core;
using Sluice.Hosting;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Serving.Auth;

namespace Sluice.Testing;

/// <summary>How one case ended: passed, or the diff or problem that failed it (already indented for printing).</summary>
public sealed record CaseResult(string Case, bool Passed, string Detail, int Steps, int Expectations, TimeSpan Took);

/// <summary>
/// Runs one case end to end in a data folder of its own: per step, the inputs are delivered (files into the drop
/// folder, HTTP bodies posted to the recipe's server with a writer token of the tenant, SQL run on PostgreSQL), the
/// recipe runs as <c>sluice run --once</c> (every source to the end of its input, then the after-load jobs), and each
/// expectation's output is compared with its expected rows.
/// </summary>
public sealed class CaseRunner(Func<DataDirectory, IEngineServices> createServices)
{
    private static readonly HttpClient Http = new() { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Keep the data folder afterwards (its path is printed), to look at what the recipe made of the input.</summary>
    public bool Keep { get; init; }

    /// <summary>The case's servers (captured APIs, pages, key prefix), started by the caller before the recipe is loaded.</summary>
    public CaseServers? Servers { get; init; }

    public async Task<CaseResult> RunAsync(Func<Recipe> loadRecipe, TestCase test, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(loadRecipe);
        ArgumentNullException.ThrowIfNull(test);
        var watch = Stopwatch.StartNew();
        var root = Path.Combine(Path.GetTempPath(), $"sluice-test-{test.Name}-{Guid.NewGuid():N}"[..48]);
        var report = new StringBuilder();
        var passed = true;
        var expectations = 0;
        var steps = 0;
        try
        {
            var recipe = loadRecipe();
            CheckInputs(recipe, test);
            var services = createServices(new DataDirectory(root));
            try
            {
                var reader = new OutputReader(recipe, services, test.File) { Servers = Servers };
                foreach (var step in test.Steps)
                {
                    steps++;
                    await RunStepAsync(recipe, services, test, step, Servers?.Pages, ct).ConfigureAwait(false);
                    foreach (var expect in step.Expect)
                    {
                        expectations++;
                        var failure = await CheckAsync(reader, test, expect, ct).ConfigureAwait(false);
                        if (failure is null) { continue; }
                        passed = false;
                        report.Append("  step ").Append(step.Number).Append(", ").Append(expect.Describe).Append(" (").Append(TestCase.Display(expect.RowsFile)).AppendLine("):").Append(failure);
                    }

                    if (!passed)
                    {
                        if (step.Number < test.Steps.Count) { report.Append("  (steps after ").Append(step.Number).AppendLine(" not run)"); }
                        break;
                    }
                }
            }
            finally
            {
                (services as IDisposable)?.Dispose();
            }
        }
        catch (Exception e) when (e is SluiceException or Connectors.ClickHouse.ClickHouseException or NpgsqlException or HttpRequestException or StackExchange.Redis.RedisException)
        {
            // A server that refused or did not answer fails this case with its reason; the next case still runs.
            passed = false;
            report.Append("  ").AppendLine(e.Message.ReplaceLineEndings(Environment.NewLine + "  "));
        }
        finally
        {
            if (Keep) { report.Append("  data folder kept: ").AppendLine(root); }
            else if (Directory.Exists(root)) { Directory.Delete(root, recursive: true); }
        }

        return new CaseResult(test.Name, passed, report.ToString(), steps, expectations, watch.Elapsed);
    }

    /// <summary>Every input names a pipeline of the recipe whose source takes it, before anything runs.</summary>
    private static void CheckInputs(Recipe recipe, TestCase test)
    {
        foreach (var input in test.Steps.SelectMany(s => s.Inputs).Where(i => i.Kind != CaseInputKind.Sql))
        {
            _ = Pipeline(recipe, test, input);
        }
    }

    private static PipelineDefinition Pipeline(Recipe recipe, TestCase test, CaseInput input)
    {
        var type = input.Kind switch { CaseInputKind.Files => "files", CaseInputKind.Pages => "salesforce", _ => "http" };
        var candidates = recipe.Pipelines.Where(p => p.SourceType == type).ToList();
        if (input.Pipeline is { } named)
        {
            var found = recipe.Pipelines.FirstOrDefault(p => p.Name == named)
                ?? throw new FixtureException(test.File, input.Line, $"recipe '{recipe.Name}' has no pipeline '{named}' (pipelines: {string.Join(", ", recipe.Pipelines.Select(p => p.Name))})");
            return found.SourceType == type ? found
                : throw new FixtureException(test.File, input.Line, $"pipeline '{named}' reads a {found.SourceType} source, not {type}");
        }

        return candidates.Count == 1 ? candidates[0]
            : throw new FixtureException(test.File, input.Line, candidates.Count == 0
                ? $"recipe '{recipe.Name}' has no pipeline with a {type} source"
                : $"recipe '{recipe.Name}' has {candidates.Count} pipelines with a {type} source ({string.Join(", ", candidates.Select(p => p.Name))}): say which with pipeline:");
    }

    private static async Task RunStepAsync(Recipe recipe, IEngineServices services, TestCase test, CaseStep step, PageServer? pages, CancellationToken ct)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(step.Timeout);
        try
        {
            foreach (var sql in step.Inputs.Where(i => i.Kind == CaseInputKind.Sql)) { await RunSqlAsync(sql, bounded.Token).ConfigureAwait(false); }
            foreach (var page in step.Inputs.Where(i => i.Kind == CaseInputKind.Pages)) { Serve(recipe, test, page, pages!); }
            foreach (var files in step.Inputs.Where(i => i.Kind == CaseInputKind.Files)) { Drop(services, (FilesSourceFactory)Pipeline(recipe, test, files).Source, files.Path); }
            var posts = step.Inputs.Where(i => i.Kind == CaseInputKind.Http).ToList();
            if (posts.Count > 0) { await PostAsync(recipe, services, test, posts, bounded.Token).ConfigureAwait(false); }
            var host = new RecipeHost(recipe, services) { Schedules = false };
            await using (host.ConfigureAwait(false))
            {
                await host.RunOnceAsync(bounded.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new SluiceException($"{test.File}:{step.Line}: step {step.Number}: the inputs were not processed within {step.Timeout.TotalSeconds:0} s (raise the step's timeout: if the recipe is slow, or look at the data folder with --keep)");
        }
    }

    /// <summary>
    /// The pages the pipeline's source reads from now on. Its login URL must be the pages server's: a recipe names it
    /// <c>${SALESFORCE_LOGIN_URL}</c>, which the case sets; one that names a real address is a fixture error, before
    /// anything is sent there.
    /// </summary>
    private static void Serve(Recipe recipe, TestCase test, CaseInput input, PageServer pages)
    {
        var source = (Connectors.Salesforce.SalesforceSourceFactory)Pipeline(recipe, test, input).Source;
        if (source.Options.ResolvedLoginUrl.Authority != pages.Url.Authority)
        {
            throw new FixtureException(test.File, input.Line, $"pages: the pipeline's source logs in at {source.Options.ResolvedLoginUrl}, not at the pages server: write its login_url as \"${{SALESFORCE_LOGIN_URL:-...}}\"");
        }

        pages.Serve(input.Object ?? source.Options.Object, input.Path, test.File, input.Line);
    }

    /// <summary>Copies the file, or every file under the folder in name order, into the drop folder; each appears whole (renamed from a partial name).</summary>
    private static void Drop(IEngineServices services, FilesSourceFactory source, string path)
    {
        var drop = new DropFolder(Path.Combine(services.Data.Root, source.Options.Folder));
        drop.EnsureCreated();
        var files = File.Exists(path) ? [path] : Directory.GetFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        foreach (var file in files)
        {
            var name = Path.GetFileName(file);
            var partial = Path.Combine(drop.Incoming, $".{name}.tmp");
            File.Copy(file, partial, overwrite: true);
            File.Move(partial, Path.Combine(drop.Incoming, name), overwrite: true);
        }
    }

    /// <summary>Runs the recipe's server on a free port just long enough to post the bodies; what landed is processed by the run that follows.</summary>
    private static async Task PostAsync(Recipe recipe, IEngineServices services, TestCase test, IReadOnlyList<CaseInput> posts, CancellationToken ct)
    {
        var tokens = new TokenStore(services.Metadata, services.Time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var host = new RecipeHost(recipe, services) { Http = new Serving.HttpServerOptions("127.0.0.1", 0), Schedules = false };
        await using (host.ConfigureAwait(false))
        {
            var run = host.RunAsync(stop.Token);
            try
            {
                var address = await host.HttpStarted.WaitAsync(ct).ConfigureAwait(false);
                foreach (var post in posts)
                {
                    var source = (HttpIngestSourceFactory)Pipeline(recipe, test, post).Source;
                    var token = tokens.Create(post.Tenant!, TokenRole.Writer, "sluice test").Token;
                    await PostOneAsync(address, post, post.Stream ?? source.Options.Stream, token, test, ct).ConfigureAwait(false);
                }
            }
            finally
            {
                await stop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await run.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The stop asked above.
                }
            }
        }
    }

    private static async Task PostOneAsync(Uri address, CaseInput post, string stream, string token, TestCase test, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(address, $"/v1/streams/{Uri.EscapeDataString(stream)}/events"))
        {
            Content = new ByteArrayContent(await File.ReadAllBytesAsync(post.Path, ct).ConfigureAwait(false)),
        };
        var type = post.ContentType ?? (post.Path.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase) || post.Path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
            ? "application/x-ndjson" : "application/json");
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await Http.SendAsync(request, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            throw new SluiceException($"{test.File}:{post.Line}: http: {TestCase.Display(post.Path)} was refused: {(int)response.StatusCode} {body.Trim()}");
        }
    }

    private static async Task RunSqlAsync(CaseInput sql, CancellationToken ct)
    {
        var settings = PostgresConnectionOptions.FromEnvironment();
        await using var connection = new NpgsqlConnection(settings.ConnectionString("sluice-test"));
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(await File.ReadAllTextAsync(sql.Path, ct).ConfigureAwait(false), connection, transaction);
        try
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        catch (PostgresException e)
        {
            var line = e.Position > 0 ? 1 + (await File.ReadAllTextAsync(sql.Path, ct).ConfigureAwait(false))[..Math.Min(e.Position - 1, (int)new FileInfo(sql.Path).Length)].Count(c => c == '\n') : 1;
            throw new FixtureException(TestCase.Display(sql.Path), line, $"PostgreSQL refused it: {e.MessageText}");
        }

        await transaction.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Null when the output holds the expected rows; else the diff, indented.</summary>
    private static async Task<string?> CheckAsync(OutputReader reader, TestCase test, CaseExpectation expect, CancellationToken ct)
    {
        // A server's table may be named after the case's own database: clickhouse:${CLICKHOUSE_DATABASE}.orders.
        expect = expect with { Table = Core.Config.EnvText.Expand(expect.Table) };
        var expected = ExpectedRows.Read(expect.RowsFile);
        var skipped = test.Volatile.Concat(expect.Ignore).ToHashSet(StringComparer.Ordinal);
        var named = expect.Columns.Count > 0 ? expect.Columns : expected.Columns;
        var unknown = named.Concat(expect.Key).Where(c => !expected.Columns.Contains(c, StringComparer.Ordinal)).Distinct().ToList();
        if (unknown.Count > 0)
        {
            throw new FixtureException(test.File, expect.Line, $"columns/key name {string.Join(", ", unknown.Select(u => $"'{u}'"))}, which {expected.File} does not have (it has: {string.Join(", ", expected.Columns)})");
        }

        var columns = named.Where(c => !skipped.Contains(c)).ToList();
        if (columns.Count == 0) { throw new FixtureException(test.File, expect.Line, $"no column of {expected.File} is left to compare"); }
        var actual = await reader.ReadAsync(expect, columns, expected.Rows.Count == 0, ct).ConfigureAwait(false);
        var diff = RowDiff.Compare(expected, columns, actual, expect.Key);
        return diff.Passed ? null : diff.Describe(expected.File, expect.Key, "    ");
    }
}
