using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Sluice.Serving;
using Sluice.Serving.Auth;
using Sluice.Serving.OpenApi;

namespace Sluice.Recipes.Reminders.Serving;

/// <summary>
/// <c>GET /v1/reminders[?tenant=T][&amp;limit=N]</c>: the reminders of one client (the token's; an admin names one),
/// newest due first, with their state (pending, sent, failed, unconfirmed, withdrawn, ...). The client is matched by its
/// keyed hash, the same one every stored row carries, so a token never sees another client's reminders. Addresses are
/// never returned.
/// </summary>
internal sealed class RemindersEndpoint(string recipe, FieldProtector protector, ServingContext context)
{
    // The recipe's pushed streams each have a reminder_store sink; the route is mapped once per server.
    private static readonly ConditionalWeakTable<IEndpointRouteBuilder, object> Mapped = [];
    private static readonly ReadScope Scope = new("client", "client_id", ["tenant", "limit"], EachOnce: false);

    public void Map(IEndpointRouteBuilder routes)
    {
        if (!Mapped.TryAdd(routes, this))
        {
            return;
        }

        routes.MapGet("/v1/reminders", HandleWithParametersAsync)
            .WithSummary("The reminders of the token's client (admins name the client with tenant=), newest due first.")
            .Access(ApiAccess.Reader)
            .Produces(StatusCodes.Status200OK).Produces(StatusCodes.Status400BadRequest).Produces(StatusCodes.Status401Unauthorized).Produces(StatusCodes.Status403Forbidden);
    }

    private Task HandleWithParametersAsync(HttpContext http, [FromQuery(Name = "tenant")] string? tenant, [FromQuery(Name = "limit")] int? limit) => HandleAsync(http);

    public async Task HandleAsync(HttpContext http)
    {
        if (await Scope.ResolveAsync(http, context).ConfigureAwait(false) is not { } client)
        {
            return;
        }

        var q = http.Request.Query;
        var limit = 100;
        if (q.TryGetValue("limit", out var l) && (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
        {
            await HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, $"limit must be a whole number from 1 to 10000, got '{l}'", "limit").ConfigureAwait(false);
            return;
        }

        var rows = ReminderOutbox.OfClient(context.Services.Metadata, recipe, protector.Key(client), limit);
        http.Response.ContentType = "application/json; charset=utf-8";
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("tenant", client);
            json.WriteStartArray("reminders");
            foreach (var r in rows)
            {
                json.WriteStartObject();
                json.WriteString("case_id", r.CaseId);
                json.WriteNumber("reminder", r.Occurrence + 1);
                json.WriteString("rule", r.Rule);
                json.WriteString("closure_at", Iso(r.ClosureAt));
                json.WriteString("due_at", Iso(r.DueAt));
                json.WriteString("status", r.Status);
                if (r.SentAt is { } sent) { json.WriteString("sent_at", Iso(sent)); }
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        await http.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), http.RequestAborted).ConfigureAwait(false);
    }

    private static string Iso(DateTime t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
