namespace Sluice.Serving.Auth;

/// <summary>What a token may do. The tenant always comes from the token, never from the request.</summary>
public enum TokenRole
{
    /// <summary>Ingests events for its tenant (optionally only into some streams).</summary>
    Writer,

    /// <summary>Queries its tenant's data.</summary>
    Reader,

    /// <summary>
    /// Process-wide: queries any tenant's data (naming the tenant in each query), opens the console and every management
    /// route; its tenant only names its holder. Cannot ingest. Reader and writer tokens never leave their tenant.
    /// </summary>
    Admin,
}

/// <summary>The holder of a valid token, as the request handlers see it.</summary>
/// <param name="Streams">For writers: the streams it may write, or null for all.</param>
public sealed record Caller(string TokenId, string Tenant, TokenRole Role, IReadOnlyList<string>? Streams)
{
    public bool MayWrite(string stream) => Role == TokenRole.Writer && (Streams is null || Streams.Contains(stream, StringComparer.Ordinal));

    public bool MayRead => Role is TokenRole.Reader or TokenRole.Admin;
}

/// <summary>A token as <c>tokens list</c> shows it: never the secret, which exists only in the creator's hands.</summary>
public sealed record TokenInfo(string Id, string Tenant, TokenRole Role, string? Name, IReadOnlyList<string>? Streams, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);
