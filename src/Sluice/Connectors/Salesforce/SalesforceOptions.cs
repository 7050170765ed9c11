using System.Text.RegularExpressions;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Recipes;
using Sluice.Connectors.Pull;

namespace Sluice.Connectors.Salesforce;

/// <summary>
/// Options of the <c>salesforce</c> source: one object read incrementally through the REST API (OAuth 2.0 client
/// credentials, SOQL filtered and ordered on the modification stamp, pages through <c>nextRecordsUrl</c>). Secrets come
/// from environment variables named here, never from the recipe. Validated at load.
/// </summary>
public sealed partial class SalesforceOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly SalesforceOptions Default = OptionDefaults.Of<SalesforceOptions>();

    /// <summary>Where tokens are issued.</summary>
    public string LoginUrl { get; init; } = "https://login.salesforce.com";

    /// <summary>The variable holding the connected app's client id.</summary>
    public string ClientIdEnv { get; init; } = "SALESFORCE_CLIENT_ID";

    /// <summary>The variable holding its client secret.</summary>
    public string ClientSecretEnv { get; init; } = "SALESFORCE_CLIENT_SECRET";

    /// <summary>REST API version.</summary>
    public string ApiVersion { get; init; } = "v59.0";

    /// <summary>The object queried (required), for example <c>Attorney_Event__c</c>.</summary>
    public string Object { get; init; } = "";

    /// <summary>The fields selected (required); the id and stamp fields are added when missing.</summary>
    public IReadOnlyList<string> Fields { get; init; } = [];

    /// <summary>An extra SOQL condition ANDed to the stamp filter.</summary>
    public string? Where { get; init; }

    /// <summary>The record id field.</summary>
    public string IdField { get; init; } = "Id";

    /// <summary>The modification stamp field.</summary>
    public string StampField { get; init; } = "SystemModstamp";

    /// <summary>Per HTTP request.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts per request on 5xx, 429 and connection failures, pausing 1 s, 2 s, 4 s, ....</summary>
    public int Attempts { get; init; } = 4;

    /// <summary>The retry of each request: 1 s doubling (a <c>Retry-After</c> wins), at most 5 min apart, <see cref="Attempts"/> in all.</summary>
    public Core.Resilience.RetryOptions Retry => new(TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), Attempts);

    /// <summary>With <c>mapping:</c>, the registered <see cref="IPullMapper"/> maps and lands the records itself (no sinks).</summary>
    public PullMapping? Pull { get; init; }

    /// <summary>Without <c>mapping:</c>, how the records are handed to the pipeline's sinks.</summary>
    public required PullStreamOptions Stream { get; init; }

    /// <summary>The login URL with <c>SALESFORCE_LOGIN_URL</c> applied.</summary>
    public Uri ResolvedLoginUrl
    {
        get
        {
            var text = Environment.GetEnvironmentVariable("SALESFORCE_LOGIN_URL") is { Length: > 0 } v ? v : LoginUrl;
            return Uri.TryCreate(text.TrimEnd('/') + "/", UriKind.Absolute, out var uri) ? uri
                : throw new SluiceException($"salesforce: the login URL '{text}' is not an absolute URL.");
        }
    }

    public (string ClientId, string Secret) Credentials()
    {
        var id = Environment.GetEnvironmentVariable(ClientIdEnv);
        var secret = Environment.GetEnvironmentVariable(ClientSecretEnv);
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(secret))
        {
            throw new SluiceException($"salesforce: set {ClientIdEnv} and {ClientSecretEnv} (the connected app's client credentials).");
        }

        return (id, secret);
    }

    public static SalesforceOptions? Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        // A description shows the mapped pull's keys too (mapping, store), which a recipe gives together.
        var mapped = map.Has("mapping") || map.Describing;
        var pull = mapped ? PullMapping.Parse(map, recipe) : null;
        var objectName = map.RequiredString("object", doc: "The object queried (required), for example `Attorney_Event__c`.");
        var options = new SalesforceOptions
        {
            LoginUrl = EnvText.Expand(map.String("login_url", Default.LoginUrl, doc: "Where tokens are issued.") ?? Default.LoginUrl),
            ClientIdEnv = map.String("client_id_env", Default.ClientIdEnv, doc: "The variable holding the connected app's client id.") ?? Default.ClientIdEnv,
            ClientSecretEnv = map.String("client_secret_env", Default.ClientSecretEnv, doc: "The variable holding its client secret.") ?? Default.ClientSecretEnv,
            ApiVersion = map.String("api_version", Default.ApiVersion, doc: "REST API version.") ?? Default.ApiVersion,
            Object = objectName,
            Fields = map.StringList("fields", doc: "The fields selected (required); the id and stamp fields are added when missing."),
            Where = map.String("where", doc: "An extra SOQL condition ANDed to the stamp filter."),
            IdField = map.String("id_field", Default.IdField, doc: "The record id field.") ?? Default.IdField,
            StampField = map.String("stamp_field", Default.StampField, doc: "The modification stamp field.") ?? Default.StampField,
            Timeout = map.Duration("timeout", Default.Timeout, doc: "Per HTTP request."),
            Attempts = map.Int("attempts", Default.Attempts, 1, 20, doc: "Attempts per request on 5xx, 429 and connection failures, pausing 1 s, 2 s, 4 s, ...."),
            Pull = pull,
            Stream = PullStreamOptions.Parse(map, objectName),
        };
        if (!Uri.TryCreate(options.LoginUrl, UriKind.Absolute, out _)) { map.Error("login_url", $"'{options.LoginUrl}' is not an absolute URL"); }
        if (options.Fields.Count == 0) { map.Error("fields", "name the fields to select, for example [Case_Id__c, Status__c]"); }
        foreach (var f in options.Fields.Append(options.Object).Append(options.IdField).Append(options.StampField).Where(f => f.Length > 0 && !Name().IsMatch(f)))
        {
            map.Error("fields", $"'{f}' is not a Salesforce API name (letters, digits, '_', '.' for relationships)");
        }

        if (!Version().IsMatch(options.ApiVersion)) { map.Error("api_version", $"'{options.ApiVersion}' must look like v59.0"); }
        return mapped && pull is null ? null : options;
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.]*$")]
    private static partial Regex Name();

    [GeneratedRegex("^v[0-9]+\\.[0-9]+$")]
    private static partial Regex Version();
}
