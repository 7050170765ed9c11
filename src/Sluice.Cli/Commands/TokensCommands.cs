using System.CommandLine;
using Sluice.Core;
using Sluice.Lake;
using Sluice.Serving.Auth;

namespace Sluice.Cli.Commands;

/// <summary><c>sluice tokens create|list|revoke</c>: API tokens for the HTTP server, stored hashed in the data folder's metadata store.</summary>
internal static class TokensCommands
{
    public static Command Create()
    {
        var command = new Command("tokens", "API tokens (writer, reader, admin), each for one tenant; stored hashed");
        command.Subcommands.Add(CreateToken());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Revoke());
        return command;
    }

    private static Command CreateToken()
    {
        var tenant = new Option<string>("--tenant") { Description = "The tenant the token acts for", Required = true };
        var role = new Option<string>("--role") { Description = "writer (ingests), reader (queries its tenant) or admin (queries any tenant)", Required = true };
        var name = new Option<string?>("--name") { Description = "A label to recognise it by in tokens list" };
        var streams = new Option<string[]>("--stream") { Description = "Writers only: limit to these streams (repeatable); default all", AllowMultipleArgumentsPerToken = true };
        var command = new Command("create", "Create a token; it is printed once, alone on the last line of stdout") { tenant, role, name, streams };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.Services(result);
            var store = new TokenStore(services.Metadata, services.Time);
            var limited = result.GetValue(streams) is { Length: > 0 } s ? s : null;
            var (info, token) = store.Create(result.GetValue(tenant)!, TokenStore.ParseRole(result.GetValue(role)!), result.GetValue(name), limited);
            await Console.Error.WriteLineAsync($"created {info.Role.ToString().ToLowerInvariant()} token {info.Id} for tenant '{info.Tenant}'{(limited is null ? "" : $" (streams {string.Join(", ", limited)})")}; it is shown only now, keep it safe:").ConfigureAwait(false);
            await Console.Out.WriteLineAsync(token).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command List()
    {
        var all = new Option<bool>("--all") { Description = "Include revoked tokens" };
        var format = CliOutput.FormatOption();
        var command = new Command("list", "List tokens (never their secrets)") { all, format };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.ExistingServices(result);
            var tokens = new TokenStore(services.Metadata, services.Time).List(result.GetValue(all));
            var rows = tokens.Select(t => new object?[]
            {
                t.Id, t.Tenant, t.Role.ToString().ToLowerInvariant(), t.Name ?? "", t.Streams is null ? "*" : string.Join(",", t.Streams),
                new UtcInstant(t.CreatedAt), UtcInstant.Of(t.RevokedAt),
            }).ToList();
            await CliOutput.WriteAsync(result, new QueryResult(["id", "tenant", "role", "name", "streams", "created_utc", "revoked_utc"], rows), result.GetValue(format)).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Command Revoke()
    {
        var id = new Argument<string>("id") { Description = "Token id (see tokens list) or the whole token" };
        var command = new Command("revoke", "Revoke a token; a running server refuses it within a second") { id };
        command.SetAction((result, ct) => CliContext.GuardAsync(async () =>
        {
            using var services = CliContext.Services(result);
            // Named by its id only: the argument may be the whole token, whose secret must not reach a terminal's scroll-back or a log.
            var tokenId = TokenStore.IdOf(result.GetValue(id)!);
            if (!new TokenStore(services.Metadata, services.Time).Revoke(tokenId))
            {
                throw new SluiceException($"no active token with id '{tokenId}' (see sluice tokens list).");
            }

            await Console.Out.WriteLineAsync($"revoked {tokenId}").ConfigureAwait(false);
            return 0;
        }));
        return command;
    }
}
