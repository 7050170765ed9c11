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
        var now = time.GetTimestamp();
        if (!_cache.TryGetValue(token, out var entry) || entry.Until < now)
        {
            if (_cache.Count >= MaxEntries) { _cache.Clear(); }
            entry = (store.Resolve(token), now + (long)(CacheFor.TotalSeconds * time.TimestampFrequency));
            _cache[token] = entry;
        }

        return entry.Caller;
    }
}
