namespace Sluice.Testing;

/// <summary>
/// What <c>sluice test</c> runs or names for one case besides its data folder: the prefix its Redis keys get
/// (<c>${SLUICE_KEY_PREFIX}</c>), the suffix of the names it makes on shared servers (<c>${SLUICE_NAME_SUFFIX}</c>: a
/// replication slot's name is unique on the whole server), the HTTP APIs its <c>http:</c> targets capture (each at the
/// URL its variable is set to) and the pages server of its <c>pages:</c> inputs (at <c>SALESFORCE_LOGIN_URL</c>).
/// The variables are set before the recipe is loaded, so the recipe's <c>${...}</c> see them.
/// </summary>
public sealed class CaseServers : IAsyncDisposable
{
    public const string KeyPrefixVariable = "SLUICE_KEY_PREFIX";
    public const string NameSuffixVariable = "SLUICE_NAME_SUFFIX";

    private readonly Dictionary<string, CaptureServer> _captures = new(StringComparer.Ordinal);

    private CaseServers(string id) => Id = id;

    /// <summary>The case's own name part, <c>sluice_test_&lt;random&gt;</c>.</summary>
    public string Id { get; }

    public string KeyPrefix => Id + ":";

    public string NameSuffix => "_" + Id["sluice_test_".Length..];

    public PageServer? Pages { get; private set; }

    public CaptureServer Capture(string variable) => _captures[variable];

    /// <summary>Starts what the case needs and sets the variables through <paramref name="set"/>.</summary>
    public static async Task<CaseServers> StartAsync(TestCase test, string id, Action<string, string> set, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(set);
        var servers = new CaseServers(id);
        set(KeyPrefixVariable, servers.KeyPrefix);
        set(NameSuffixVariable, servers.NameSuffix);
        try
        {
            foreach (var variable in test.Steps.SelectMany(s => s.Expect).Where(e => e.Place == OutputPlace.Http).Select(e => e.Table).Distinct(StringComparer.Ordinal))
            {
                var capture = await CaptureServer.StartAsync(ct).ConfigureAwait(false);
                servers._captures[variable] = capture;
                set(variable, capture.Url.ToString());
            }

            if (test.Steps.Any(s => s.Inputs.Any(i => i.Kind == CaseInputKind.Pages)))
            {
                servers.Pages = await PageServer.StartAsync(ct).ConfigureAwait(false);
                set("SALESFORCE_LOGIN_URL", servers.Pages.Url.ToString());
                // The pages server takes any client credentials; a source refuses to start without some.
                set("SALESFORCE_CLIENT_ID", "sluice-test");
                set("SALESFORCE_CLIENT_SECRET", "sluice-test");
            }
        }
        catch
        {
            await servers.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return servers;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var capture in _captures.Values) { await capture.DisposeAsync().ConfigureAwait(false); }
        if (Pages is not null) { await Pages.DisposeAsync().ConfigureAwait(false); }
    }
}
