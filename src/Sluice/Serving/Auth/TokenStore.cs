using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Sluice.Core;
using Sluice.Core.Metadata;

namespace Sluice.Serving.Auth;

/// <summary>
/// API tokens in the metadata store. A token is <c>sk_&lt;id&gt;_&lt;secret&gt;</c> with 256 random bits of secret; only its
/// SHA-256 is stored (a slow hash buys nothing against 256 random bits), so a copy of the data folder holds no usable
/// token. The whole token is shown once, at creation.
/// </summary>
public sealed partial class TokenStore
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE serving_tokens (
            id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, role TEXT NOT NULL, name TEXT NULL,
            streams TEXT NULL, created_at TEXT NOT NULL, revoked_at TEXT NULL);
        """,
    ];

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;

    public TokenStore(MetadataStore store, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = time;
        store.Migrate("serving.tokens", Migrations);
    }

    /// <summary>Creates a token and returns it whole; it cannot be shown again.</summary>
    public (TokenInfo Info, string Token) Create(string tenant, TokenRole role, string? name, IReadOnlyList<string>? streams = null)
    {
        if (!TenantRegex().IsMatch(tenant ?? ""))
        {
            throw new SluiceException($"tokens: tenant '{tenant}' must be 1-64 letters, digits, '_', '-' or '.'.");
        }

        if (streams is not null && role != TokenRole.Writer)
        {
            throw new SluiceException("tokens: only writer tokens are limited to streams.");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        var token = $"sk_{id}_{secret}";
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        c.Execute(
            "INSERT INTO serving_tokens(id, hash, tenant, role, name, streams, created_at) VALUES ($id, $h, $t, $r, $n, $s, $c)",
            null, ("$id", id), ("$h", HashOf(token)), ("$t", tenant), ("$r", role.ToString().ToLowerInvariant()), ("$n", name),
            ("$s", streams is null ? null : string.Join(',', streams)), ("$c", now.Iso()));
        return (new TokenInfo(id, tenant!, role, name, streams, now, null), token);
    }

    /// <summary>The caller a presented token stands for, or null when it is unknown, malformed or revoked.</summary>
    public Caller? Resolve(string token)
    {
        if (!token.StartsWith("sk_", StringComparison.Ordinal) || token.Length > 200)
        {
            return null;
        }

        using var c = _store.Connect();
        using var cmd = c.Command("SELECT id, tenant, role, streams FROM serving_tokens WHERE hash = $h AND revoked_at IS NULL", null, ("$h", HashOf(token)));
        using var r = cmd.ExecuteReader();
        if (!r.Read())
        {
            return null;
        }

        return new Caller(r.GetString(0), r.GetString(1), ParseRole(r.GetString(2)), r.IsDBNull(3) ? null : r.GetString(3).Split(','));
    }

    /// <summary>The caller an active token stands for, by its id (what a console session keeps), or null when revoked or unknown.</summary>
    public Caller? ResolveId(string id)
    {
        using var c = _store.Connect();
        using var cmd = c.Command("SELECT id, tenant, role, streams FROM serving_tokens WHERE id = $id AND revoked_at IS NULL", null, ("$id", id));
        using var r = cmd.ExecuteReader();
        return r.Read() ? new Caller(r.GetString(0), r.GetString(1), ParseRole(r.GetString(2)), r.IsDBNull(3) ? null : r.GetString(3).Split(',')) : null;
    }

    public IReadOnlyList<TokenInfo> List(bool includeRevoked = false)
    {
        using var c = _store.Connect();
        using var cmd = c.Command(
            "SELECT id, tenant, role, name, streams, created_at, revoked_at FROM serving_tokens WHERE $all OR revoked_at IS NULL ORDER BY created_at, id",
            null, ("$all", includeRevoked));
        using var r = cmd.ExecuteReader();
        var list = new List<TokenInfo>();
        while (r.Read())
        {
            list.Add(new TokenInfo(
                r.GetString(0), r.GetString(1), ParseRole(r.GetString(2)), r.IsDBNull(3) ? null : r.GetString(3),
                r.IsDBNull(4) ? null : r.GetString(4).Split(','), SqliteExtensions.ParseIso(r.GetString(5)),
                r.IsDBNull(6) ? null : SqliteExtensions.ParseIso(r.GetString(6))));
        }

        return list;
    }

    /// <summary>Revokes by id (or by the whole token); returns false when no active token matches.</summary>
    public bool Revoke(string idOrToken)
    {
        ArgumentNullException.ThrowIfNull(idOrToken);
        var id = IdOf(idOrToken);
        using var c = _store.Connect();
        return c.Execute("UPDATE serving_tokens SET revoked_at = $n WHERE id = $id AND revoked_at IS NULL", null, ("$n", _time.GetUtcNow().Iso()), ("$id", id)) > 0;
    }

    /// <summary>The token's id: the argument itself, or the id part of a whole token (<c>sk_&lt;id&gt;_&lt;secret&gt;</c>), so that what is echoed never holds the secret.</summary>
    public static string IdOf(string idOrToken) =>
        idOrToken.StartsWith("sk_", StringComparison.Ordinal) && idOrToken.Split('_') is { Length: >= 3 } parts ? parts[1] : idOrToken;

    public static TokenRole ParseRole(string text) => text.ToLowerInvariant() switch
    {
        "writer" => TokenRole.Writer,
        "reader" => TokenRole.Reader,
        "admin" => TokenRole.Admin,
        _ => throw new SluiceException($"unknown role '{text}' (expected writer, reader or admin)."),
    };

    internal static string HashOf(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex TenantRegex();

    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
