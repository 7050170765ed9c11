using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;

namespace Sluice.Serving.Auth;

/// <summary>
/// Resolves <c>Authorization: Bearer</c> tokens for requests, with a small cache so a busy stream does not ask SQLite
/// for every request: an answer (valid or not) is reused for <see cref="CacheFor"/>, which is therefore also how long a
/// revocation takes to reach a running server. Bounded: past <see cref="MaxEntries"/> the cache starts over.
/// </summary>
public sealed class TokenAuthenticator(TokenStore store, TimeProvider time)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);
    public const int MaxEntries = 10_000;

    private readonly ConcurrentDictionary<string, (Caller? Caller, long Until)> _cache = new(StringComparer.Ordinal);

    /// <summary>Console sessions' tokens, by id: apart from <see cref="_cache"/>, so no presented text can stand for an id.</summary>
    private readonly ConcurrentDictionary<string, (Caller? Caller, long Until)> _byId = new(StringComparer.Ordinal);

    /// <summary>The caller of a request, or null with the reason (no header, unknown token).</summary>
    public Caller? Authenticate(HttpRequest request, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(request);
        var header = request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            problem = "no token: send Authorization: Bearer <token>";
            return null;
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            problem = "the Authorization header must be 'Bearer <token>'";
            return null;
        }

        var caller = Resolve(header[7..].Trim());
        problem = caller is null ? "unknown or revoked token" : null;
        return caller;
    }

    /// <summary>The caller a token stands for now (cached like a header's), or null when it is unknown or revoked.</summary>
    public Caller? Resolve(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return Cached(_cache, token, store.Resolve);
    }

    /// <summary>The caller an active token stands for by its id (a console session's token), cached as <see cref="Resolve"/> is.</summary>
    public Caller? ResolveId(string tokenId)
    {
        ArgumentNullException.ThrowIfNull(tokenId);
        return Cached(_byId, tokenId, store.ResolveId);
    }

    private Caller? Cached(ConcurrentDictionary<string, (Caller? Caller, long Until)> cache, string key, Func<string, Caller?> resolve)
    {
        var now = time.GetTimestamp();
        if (!cache.TryGetValue(key, out var entry) || entry.Until < now)
        {
            if (cache.Count >= MaxEntries) { cache.Clear(); }
            entry = (resolve(key), now + (long)(CacheFor.TotalSeconds * time.TimestampFrequency));
            cache[key] = entry;
        }

        return entry.Caller;
    }
}
