using Microsoft.AspNetCore.Builder;
using Sluice.Serving.Auth;

namespace Sluice.Serving.OpenApi;

/// <summary>
/// Who may call a route, as endpoint metadata: the handler checks it, the OpenAPI document declares it (the bearer
/// scheme with the roles, OpenAPI 3.1 lets a non-OAuth requirement list them), so the two are written in one place.
/// </summary>
/// <param name="Roles">Token roles accepted; empty: no token needed.</param>
/// <param name="ManagementKey">The run's management key (sent as a bearer token) is accepted too.</param>
public sealed record ApiAccess(IReadOnlyList<TokenRole> Roles, bool ManagementKey = false)
{
    public static readonly ApiAccess Anyone = new([]);

    public static readonly ApiAccess Writer = new([TokenRole.Writer]);

    public static readonly ApiAccess Reader = new([TokenRole.Reader, TokenRole.Admin]);

    public static readonly ApiAccess Admin = new([TokenRole.Admin]);

    public static readonly ApiAccess Management = new([TokenRole.Admin], ManagementKey: true);

    public bool NeedsToken => Roles.Count > 0;

    /// <summary>The sentence the document adds to the operation's description.</summary>
    public string Describe()
    {
        if (!NeedsToken) { return "No token needed."; }
        var roles = string.Join(" or ", Roles.Select(r => r.ToString().ToLowerInvariant()));
        return ManagementKey ? $"Needs the run's management key or a token of role {roles} (Authorization: Bearer)." : $"Needs a token of role {roles} (Authorization: Bearer).";
    }
}

public static class ApiAccessExtensions
{
    /// <summary>Declares who may call the route (the handler still checks it).</summary>
    public static TBuilder Access<TBuilder>(this TBuilder builder, ApiAccess access)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(access);
}
