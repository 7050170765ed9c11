using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Sluice.Serving.Console;

/// <summary>
/// The console's logins, held in this process only: the browser's cookie is a random session id, never the token, and
/// the token it was opened with is checked again on every request (so revoking it ends the session within
/// <see cref="Auth.TokenAuthenticator.CacheFor"/>). A session ends at logout, after <see cref="IdleTimeout"/> without a
/// request, or <see cref="Lifetime"/> after login, whichever comes first. Bounded: past <see cref="MaxSessions"/>
/// the oldest session is ended for the new one.
/// </summary>
public sealed class ConsoleSessions(TimeProvider time)
{
    /// <summary>Name of the session cookie (HttpOnly, SameSite=Strict, path /).</summary>
    public const string CookieName = "sluice_session";

    /// <summary>Header carrying the session's CSRF token on a cookie-authenticated POST, PUT, PATCH or DELETE.</summary>
    public const string CsrfHeader = "X-Sluice-Csrf";

    /// <summary>Logins kept at most: a few operators with a few browsers each, with a wide margin.</summary>
    public const int MaxSessions = 1_000;

    /// <summary>A console left open over lunch still works; one forgotten overnight does not.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromHours(2);

    /// <summary>A working day: then log in again, with a token that may have been rotated meanwhile.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(12);

    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);

    public int Count => _sessions.Count;

    /// <summary>Opens a session for a token already checked to be an admin's; returns its id (the cookie value).</summary>
    public Session Open(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var now = time.GetUtcNow();
        if (_sessions.Count >= MaxSessions)
        {
            foreach (var s in _sessions.Values.Where(s => !s.LiveAt(now))) { _sessions.TryRemove(s.Id, out _); }
            while (_sessions.Count >= MaxSessions && _sessions.Values.MinBy(s => s.Created) is { } oldest) { _sessions.TryRemove(oldest.Id, out _); }
        }

        var session = new Session(Random(), token, Random(), now) { LastSeen = now };
        _sessions[session.Id] = session;
        return session;
    }

    /// <summary>The live session of a cookie value (its idle time starts again), or null.</summary>
    public Session? Find(string? id)
    {
        if (string.IsNullOrEmpty(id) || !_sessions.TryGetValue(id, out var session)) { return null; }
        var now = time.GetUtcNow();
        if (!session.LiveAt(now))
        {
            _sessions.TryRemove(id, out _);
            return null;
        }

        session.LastSeen = now;
        return session;
    }

    public void Close(string? id)
    {
        if (id is not null) { _sessions.TryRemove(id, out _); }
    }

    private static string Random() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>One login. <see cref="Token"/> stays in this process; <see cref="Csrf"/> is given to the pages.</summary>
    public sealed class Session(string id, string token, string csrf, DateTimeOffset created)
    {
        public string Id { get; } = id;

        public string Token { get; } = token;

        public string Csrf { get; } = csrf;

        public DateTimeOffset Created { get; } = created;

        public DateTimeOffset LastSeen { get; set; }

        public bool LiveAt(DateTimeOffset now) => now - LastSeen < IdleTimeout && now - Created < Lifetime;

        /// <summary>Whether a request's CSRF value is this session's (compared in constant time).</summary>
        public bool CsrfMatches(string? presented) =>
            presented is { Length: > 0 } && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(Csrf));
    }
}
