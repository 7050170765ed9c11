using System.Security.Cryptography;
using System.Text;
using Sluice.Core.Metadata;

namespace Sluice.Serving.Console;

/// <summary>
/// The console's logins, kept in the metadata store so a restart of the process logs nobody out. The browser's cookie
/// is a random session id, never the token; the store keeps only the id's SHA-256 (a copy of the data folder holds no
/// usable session) and the id of the token it was opened with, which is checked again on every request (so revoking it
/// ends the session within <see cref="Auth.TokenAuthenticator.CacheFor"/>). A session ends at logout, after
/// <see cref="IdleTimeout"/> without a request, or <see cref="Lifetime"/> after login, whichever comes first. Bounded:
/// past <see cref="MaxSessions"/> the oldest session is ended for the new one.
/// </summary>
public sealed class ConsoleSessions
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

    /// <summary>
    /// How stale the stored last request may be: the pages poll every 5 s, and a write per poll would be most of the
    /// store's writes for nothing; a minute is nothing against <see cref="IdleTimeout"/>.
    /// </summary>
    public static readonly TimeSpan LastSeenPrecision = TimeSpan.FromMinutes(1);

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE console_sessions (
            id_hash TEXT PRIMARY KEY, token_id TEXT NOT NULL, csrf TEXT NOT NULL, created_at TEXT NOT NULL, last_seen TEXT NOT NULL);
        CREATE INDEX console_sessions_created ON console_sessions(created_at);
        """,
    ];

    private readonly MetadataStore _store;
    private readonly TimeProvider _time;

    public ConsoleSessions(MetadataStore store, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _time = time;
        store.Migrate("serving.console_sessions", Migrations);
    }

    /// <summary>Sessions stored, live or not yet swept.</summary>
    public int Count
    {
        get
        {
            using var c = _store.Connect();
            using var cmd = c.Command("SELECT count(*) FROM console_sessions");
            return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Opens a session for a token already checked to be an admin's (by its id); the session's id is the cookie value.</summary>
    public Session Open(string tokenId)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenId);
        var now = _time.GetUtcNow();
        var session = new Session(Random(), tokenId, Random(), now) { LastSeen = now };
        using var c = _store.Connect();
        using var tx = c.BeginTransaction();
        c.Execute("DELETE FROM console_sessions WHERE last_seen <= $idle OR created_at <= $old", tx, ("$idle", (now - IdleTimeout).Iso()), ("$old", (now - Lifetime).Iso()));
        c.Execute(
            "DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions ORDER BY created_at, id_hash LIMIT (SELECT CASE WHEN count(*) > $keep THEN count(*) - $keep ELSE 0 END FROM console_sessions))",
            tx, ("$keep", MaxSessions - 1));
        c.Execute(
            "INSERT INTO console_sessions(id_hash, token_id, csrf, created_at, last_seen) VALUES ($h, $t, $c, $n, $n)",
            tx, ("$h", HashOf(session.Id)), ("$t", tokenId), ("$c", session.Csrf), ("$n", now.Iso()));
        tx.Commit();
        return session;
    }

    /// <summary>The live session of a cookie value (its idle time starts again), or null.</summary>
    public Session? Find(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 100) { return null; }
        var hash = HashOf(id);
        var now = _time.GetUtcNow();
        using var c = _store.Connect();
        Session session;
        using (var cmd = c.Command("SELECT token_id, csrf, created_at, last_seen FROM console_sessions WHERE id_hash = $h", null, ("$h", hash)))
        using (var r = cmd.ExecuteReader())
        {
            if (!r.Read()) { return null; }
            session = new Session(id, r.GetString(0), r.GetString(1), SqliteExtensions.ParseIso(r.GetString(2))) { LastSeen = SqliteExtensions.ParseIso(r.GetString(3)) };
        }

        if (!session.LiveAt(now))
        {
            c.Execute("DELETE FROM console_sessions WHERE id_hash = $h", null, ("$h", hash));
            return null;
        }

        if (now - session.LastSeen >= LastSeenPrecision)
        {
            c.Execute("UPDATE console_sessions SET last_seen = $n WHERE id_hash = $h", null, ("$n", now.Iso()), ("$h", hash));
        }

        session.LastSeen = now;
        return session;
    }

    public void Close(string? id)
    {
        if (string.IsNullOrEmpty(id)) { return; }
        using var c = _store.Connect();
        c.Execute("DELETE FROM console_sessions WHERE id_hash = $h", null, ("$h", HashOf(id)));
    }

    private static string HashOf(string id) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)));

    private static string Random() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>One login: <see cref="Id"/> is the cookie, <see cref="Csrf"/> is given to the pages.</summary>
    public sealed class Session(string id, string tokenId, string csrf, DateTimeOffset created)
    {
        public string Id { get; } = id;

        /// <summary>The id of the admin token the session was opened with (never the token itself).</summary>
        public string TokenId { get; } = tokenId;

        public string Csrf { get; } = csrf;

        public DateTimeOffset Created { get; } = created;

        public DateTimeOffset LastSeen { get; set; }

        public bool LiveAt(DateTimeOffset now) => now - LastSeen < IdleTimeout && now - Created < Lifetime;

        /// <summary>Whether a request's CSRF value is this session's (compared in constant time).</summary>
        public bool CsrfMatches(string? presented) =>
            presented is { Length: > 0 } && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(Csrf));
    }
}
