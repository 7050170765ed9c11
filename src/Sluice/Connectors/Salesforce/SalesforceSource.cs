using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Polly;
using Sluice.Connectors.Http;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Core.Resilience;
using Sluice.Core.Text;
using Sluice.Connectors.Pull;

namespace Sluice.Connectors.Salesforce;

/// <summary>The <c>salesforce</c> source type: incremental extraction of one object through the REST API.</summary>
public sealed class SalesforceSourceType : ISourceType
{
    public string Name => "salesforce";

    public ISourceFactory Parse(ConfigMap options, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(recipe);
        return new SalesforceSourceFactory(recipe.Name, Postgres.PostgresPullSourceType.PipelineName(options), SalesforceOptions.Parse(options, recipe));
    }
}

/// <summary>With <c>mapping:</c> the source lands attorney events itself (<see cref="Create"/>); without, it hands the records to the pipeline's sinks (<see cref="CreateStream"/>).</summary>
public sealed class SalesforceSourceFactory(string recipe, string pipeline, SalesforceOptions? options) : Core.Pipeline.IStreamSourceFactory, IStandaloneSource, Core.Pipeline.IKnownBatchTables, IConnectionCheck, IPullSourceFactory, Core.Pipeline.ILogSequencedSourceFactory
{
    public PullMapping? Mapping => options?.Pull;

    /// <summary><c>validate --connect</c>: the login round trip (client credentials against <c>login_url</c>), nothing read.</summary>
    public async Task<IReadOnlyList<string>> CheckConnectionAsync(CancellationToken ct)
    {
        var extractor = new SalesforceExtractor(Options, TimeProvider.System);
        await using (extractor.ConfigureAwait(false))
        {
            return await extractor.LoginProblemAsync(ct).ConfigureAwait(false) is { } problem ? [problem] : [];
        }
    }

    public IReadOnlyList<Core.Schema.TableSchema> BatchTables => options is null ? [] : [PulledRows.Schema(options.Stream.Table, options.Stream.Columns)];

    public SalesforceOptions Options => options ?? throw new InvalidOperationException("the recipe did not validate");

    public IRunnableSource Create(IEngineServices services) =>
        Options.Pull!.Create(services, recipe, "salesforce", pipeline, new SalesforceExtractor(Options, services.Time));

    public Core.Pipeline.IStreamSource CreateStream(IEngineServices services) =>
        new PullStreamSource(services, recipe, "salesforce", pipeline, Options.Stream, new SalesforceExtractor(Options, services.Time));

    public string? SinksProblem(bool hasSinks) => PullSinks.Problem("salesforce", options is null || options.Pull is not null, hasSinks);
}

/// <summary>
/// Reads an object with SOQL <c>WHERE SystemModstamp &gt;= since ORDER BY SystemModstamp, Id</c> and follows
/// <c>nextRecordsUrl</c> page by page. The token comes from the client-credentials flow and is fetched again once when
/// a request answers 401 (expired session). What <see cref="HttpFailures"/> calls transient (5xx, 408, 429, connection
/// failures, timeouts) is retried with doubling pauses on the injected clock (<see cref="SalesforceOptions.Retry"/>); any other error stops the pull with Salesforce's own message, and one that the next poll would get
/// again (refused credentials, 401 with a renewed token, 400, 403, 404) is a <see cref="FatalException"/> that ends the run.
/// </summary>
public sealed class SalesforceExtractor : IIncrementalExtractor
{
    private readonly SalesforceOptions _options;
    private readonly TimeProvider _time;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;
    private string? _token;
    private Uri? _instance;

    public SalesforceExtractor(SalesforceOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _time = time;
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = options.Timeout };
        Describe = $"Salesforce {options.Object} via {options.ResolvedLoginUrl}";
        _retry = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddTransientRetry(options.Retry, HttpFailures.IsTransient,
                args =>
                {
                    // The answer that is tried again is not read: its connection goes back to the pool.
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
                outcome => outcome.Result?.Headers.RetryAfter?.Delta)
            .Build();
    }

    public string Describe { get; }

    public string Soql(DateTime? since)
    {
        var fields = new List<string> { _options.IdField, _options.StampField };
        fields.AddRange(_options.Fields.Where(f => !fields.Contains(f, StringComparer.OrdinalIgnoreCase)));
        var conditions = new List<string>();
        if (since is { } s)
        {
            // SOQL datetime literals have whole seconds; rounding down only re-reads what the watermark then skips.
            conditions.Add($"{_options.StampField} >= {s.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}");
        }

        if (_options.Where is { Length: > 0 } w) { conditions.Add($"({w})"); }
        return $"SELECT {string.Join(", ", fields)} FROM {_options.Object}" +
               (conditions.Count > 0 ? " WHERE " + string.Join(" AND ", conditions) : "") +
               $" ORDER BY {_options.StampField} ASC, {_options.IdField} ASC";
    }

    public async IAsyncEnumerable<IReadOnlyList<PulledRecord>> ReadSinceAsync(DateTime? since, [EnumeratorCancellation] CancellationToken ct)
    {
        var next = $"services/data/{_options.ApiVersion}/query?q={Uri.EscapeDataString(Soql(since))}";
        while (next is not null)
        {
            using var doc = await GetAsync(next, ct).ConfigureAwait(false);
            var root = doc.RootElement;
            var page = new List<PulledRecord>();
            if (root.TryGetProperty("records", out var records) && records.ValueKind == JsonValueKind.Array)
            {
                foreach (var record in records.EnumerateArray())
                {
                    page.Add(Record(record));
                }
            }

            next = root.TryGetProperty("done", out var done) && done.ValueKind == JsonValueKind.False &&
                   root.TryGetProperty("nextRecordsUrl", out var url) && url.GetString() is { Length: > 0 } u
                ? u.TrimStart('/')
                : null;
            if (page.Count > 0)
            {
                yield return page;
            }
        }
    }

    private PulledRecord Record(JsonElement record)
    {
        string? id = null;
        DateTime? stamp = null;
        foreach (var p in record.EnumerateObject())
        {
            if (p.NameEquals(_options.IdField)) { id = p.Value.GetString(); }
            else if (p.NameEquals(_options.StampField) && p.Value.ValueKind == JsonValueKind.String && Timestamps.TryParseUtc(p.Value.GetString().AsSpan(), out var t)) { stamp = t; }
        }

        if (id is null || stamp is null)
        {
            throw new SluiceException($"{Describe}: a record without {(id is null ? _options.IdField : _options.StampField)}; the query must select both.");
        }

        return new PulledRecord(id, stamp.Value, Encoding.UTF8.GetBytes(record.GetRawText()));
    }

    private async Task<JsonDocument> GetAsync(string relative, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _retry.ExecuteAsync(async token => await SendAsync(relative, token).ConfigureAwait(false), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (HttpFailures.IsTransient(e) && !ct.IsCancellationRequested)
        {
            throw new RetriesExhaustedException(Describe, _options.Attempts, e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var text = $"{Describe}: {(int)response.StatusCode} {response.ReasonPhrase}: {ErrorText(body)}";
                // Refused with a fresh token, forbidden, a query or object Salesforce rejects: the next poll gets the same answer.
                throw IsPermanent(response.StatusCode) ? new FatalException(text + (response.StatusCode == HttpStatusCode.Unauthorized ? " (refused again with a renewed token)" : "")) : new SluiceException(text);
            }

            return JsonDocument.Parse(body);
        }
    }

    /// <summary>One attempt: a 401 (the session expired) fetches a new token and asks once more within the attempt.</summary>
    private async Task<HttpResponseMessage> SendAsync(string relative, CancellationToken ct)
    {
        for (var renewed = false; ; renewed = true)
        {
            if (_token is null) { await AuthenticateAsync(ct).ConfigureAwait(false); }
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_instance!, relative));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            request.Headers.Add("Sforce-Query-Options", "batchSize=2000");
            var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized || renewed) { return response; }
            response.Dispose();
            _token = null;
        }
    }

    /// <summary>Logs in once (5 s at most); what went wrong, as <c>key: what</c>, or null when Salesforce gave a token.</summary>
    public async Task<string?> LoginProblemAsync(CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await AuthenticateAsync(limit.Token).ConfigureAwait(false);
            return null;
        }
        catch (SluiceException e) when (e.Message.StartsWith("salesforce: set ", StringComparison.Ordinal))
        {
            return $"client_id_env: {e.Message}";
        }
        catch (SluiceException e)
        {
            return $"login_url: {e.Message}";
        }
        catch (Exception e) when (e is OperationCanceledException or JsonException && !ct.IsCancellationRequested)
        {
            return $"login_url: {Describe}: {(e is JsonException ? "the token endpoint did not answer JSON" : "the token endpoint did not answer within 5 s")}";
        }
    }

    private async Task AuthenticateAsync(CancellationToken ct)
    {
        var (clientId, secret) = _options.Credentials();
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = clientId,
            ["client_secret"] = secret,
        });
        HttpResponseMessage response;
        try
        {
            response = await _http.PostAsync(new Uri(_options.ResolvedLoginUrl, "services/oauth2/token"), form, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new SluiceException($"{Describe}: cannot reach the token endpoint: {e.Message}", e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var text = $"{Describe}: token request refused ({(int)response.StatusCode}): {ErrorText(body)}";
                throw IsPermanent(response.StatusCode) ? new FatalException(text + "; check the client id and secret") : new SluiceException(text);
            }

            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            _token = root.TryGetProperty("access_token", out var t) ? t.GetString() : null;
            var instance = root.TryGetProperty("instance_url", out var i) ? i.GetString() : null;
            if (_token is null || instance is null || !Uri.TryCreate(instance.TrimEnd('/') + "/", UriKind.Absolute, out _instance))
            {
                throw new SluiceException($"{Describe}: the token response lacks access_token or instance_url.");
            }
        }
    }

    private static bool IsPermanent(HttpStatusCode status) =>
        status is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound;

    /// <summary>Salesforce errors come as <c>[{"message": ..., "errorCode": ...}]</c> or OAuth's <c>{"error", "error_description"}</c>.</summary>
    private static string ErrorText(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() > 0 && root[0].TryGetProperty("message", out var m))
            {
                return $"{(root[0].TryGetProperty("errorCode", out var c) ? c.GetString() + ": " : "")}{m.GetString()}";
            }

            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var e))
            {
                return $"{e.GetString()}{(root.TryGetProperty("error_description", out var d) ? ": " + d.GetString() : "")}";
            }
        }
        catch (JsonException)
        {
            // Not JSON: shown as it is, shortened.
        }

        return body.Length > 300 ? body[..300] + "..." : body;
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }
}
