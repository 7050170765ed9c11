using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sluice.Core.DeadLetters;
using Sluice.Serving.OpenApi;
using static Sluice.Serving.Management.OperatorApi;

namespace Sluice.Serving.Management;

/// <summary>
/// The console's dead-letter routes: list with a filter and a total, one letter whole with its edit history, edit a
/// pending letter's payload, replay (by ids or a filter) with the running host's own components, discard with a reason.
/// Admin only (<see cref="ManagementEndpoints.Allowed"/>). docs/CONSOLE.md, "Operator API".
/// </summary>
internal static class DeadLetterEndpoints
{
    public const int MaxLimit = 1000;

    /// <summary>Letters one replay or discard request names at most, and a filter replays at most (call again for more).</summary>
    public const int MaxBatch = 10_000;

    /// <summary>Characters of the payload a list shows (the whole is in the letter's own route).</summary>
    public const int PreviewLength = 200;

    public const int MaxReasonLength = 1000;

    public static void Map(WebApplication app, ServingContext context, string key)
    {
        var store = context.Services.DeadLetters;
        app.MapGet("/api/deadletters", (HttpContext http) => Allowed(http, context, key) ?? List(http, store))
            .WithSummary("Dead letters, newest first: recipe, source (prefix), status (pending|replayed|discarded), reason (contains), since, until (ISO 8601 or date), limit, offset; with the total. Admin.")
            .Access(ApiAccess.Management);
        app.MapGet("/api/deadletters/{id}", (HttpContext http, string id) => Allowed(http, context, key) ?? Show(store, id))
            .WithSummary("One dead letter whole: raw payload, position, status and its edit history. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/deadletters/{id}/edit", async (HttpContext http, string id) => Allowed(http, context, key) ?? await EditAsync(http, context, key, store, id).ConfigureAwait(false))
            .WithSummary("Replaces a pending letter's payload before its replay ({ raw, note }); the old payload is kept in its edits. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/deadletters/replay", async (HttpContext http) => Allowed(http, context, key) ?? await ReplayAsync(http, context, store).ConfigureAwait(false))
            .WithSummary("Replays pending letters ({ ids } or { filter }) with the running recipe's components; returns how many were replayed and why the others were not. Admin.")
            .Access(ApiAccess.Management);
        app.MapPost("/api/deadletters/discard", async (HttpContext http) => Allowed(http, context, key) ?? await DiscardAsync(http, store).ConfigureAwait(false))
            .WithSummary("Sets pending letters aside ({ ids } or { filter }, and a reason): kept with status discarded, never deleted. Admin.")
            .Access(ApiAccess.Management);
    }

    private static IResult? Allowed(HttpContext http, ServingContext context, string key) => ManagementEndpoints.Allowed(http, context, key);

    private static IResult List(HttpContext http, DeadLetterStore store)
    {
        var q = http.Request.Query;
        var (filter, bad) = Filter(new FilterBody(q["recipe"], q["source"], q["status"], q["reason"], q["since"], q["until"]), "");
        if (bad is not null) { return Error(400, bad); }
        var (limit, badLimit) = Int(http.Request, "limit", 100, 1, MaxLimit);
        if (badLimit is not null) { return badLimit; }
        var (offset, badOffset) = Int(http.Request, "offset", 0, 0, int.MaxValue);
        if (badOffset is not null) { return badOffset; }
        var (total, items) = store.Find(filter!, limit, offset);
        return Results.Json(new
        {
            total,
            items = items.Select(l => new
            {
                id = l.Id, recipe = l.Recipe, source = l.Source, status = l.Status, reason = l.Reason, position = l.Position, createdAt = Utc(l.CreatedAt),
                preview = l.Payload is { Length: > PreviewLength } p ? p[..PreviewLength] + "…" : l.Payload,
            }),
        });
    }

    private static IResult Show(DeadLetterStore store, string idText)
    {
        if (!TryId(idText, out var id)) { return BadId(idText); }
        return store.Get(id) is { } letter ? Results.Json(Whole(store, letter)) : NotFound(id);
    }

    private static async Task<IResult> EditAsync(HttpContext http, ServingContext context, string key, DeadLetterStore store, string idText)
    {
        if (!TryId(idText, out var id)) { return BadId(idText); }
        var (body, bad) = await ReadAsync<EditBody>(http.Request).ConfigureAwait(false);
        if (bad is not null) { return bad; }
        if (body!.Raw is null) { return Error(400, "raw: missing (the record's new text)"); }
        var (letter, refused) = store.Edit(id, body.Raw, Who(http, context, key), body.Note);
        return letter is null ? NotFound(id) : refused is not null ? Error(409, refused) : Results.Json(Whole(store, letter));
    }

    private static async Task<IResult> ReplayAsync(HttpContext http, ServingContext context, DeadLetterStore store)
    {
        var (body, bad) = await ReadAsync<BatchBody>(http.Request).ConfigureAwait(false);
        if (bad is not null) { return bad; }
        if (body!.Filter?.Status is { Length: > 0 } status && status != DeadLetterStore.Pending)
        {
            return Error(400, $"filter.status: '{status}': only pending letters are replayed");
        }

        var (letters, refused) = Letters(store, body);
        if (refused is not null) { return refused; }
        var failed = new List<object>();
        var replayed = 0;
        foreach (var group in letters!.GroupBy(l => l.Recipe, StringComparer.Ordinal))
        {
            var pending = new List<DeadLetter>();
            foreach (var letter in group)
            {
                if (letter.Status == DeadLetterStore.Pending) { pending.Add(letter); }
                else { failed.Add(new { id = letter.Id, reason = $"letter {letter.Id} is {letter.Status}, not pending: not replayed" }); }
            }

            if (pending.Count == 0) { continue; }
            var (host, _) = Recipe(context, group.Key);
            if (host is null)
            {
                var why = $"recipe '{group.Key}' does not run in this process: replay it with sluice dlq replay (beside its run, or alone)";
                failed.AddRange(pending.Select(l => new { id = l.Id, reason = why }));
                continue;
            }

            foreach (var (id, error) in await host.ReplayAsync(pending, http.RequestAborted).ConfigureAwait(false))
            {
                if (error is null) { replayed++; }
                else { failed.Add(new { id, reason = error }); }
            }
        }

        return Results.Json(new { replayed, failed });
    }

    private static async Task<IResult> DiscardAsync(HttpContext http, DeadLetterStore store)
    {
        var (body, bad) = await ReadAsync<BatchBody>(http.Request).ConfigureAwait(false);
        if (bad is not null) { return bad; }
        if (string.IsNullOrWhiteSpace(body!.Reason)) { return Error(400, "reason: missing (why the letters are set aside; it is kept with them)"); }
        if (body.Reason.Length > MaxReasonLength) { return Error(400, $"reason: {body.Reason.Length} characters, at most {MaxReasonLength}"); }
        if (body.Ids is not null && body.Filter is null)
        {
            var (letters, refused) = Letters(store, body);
            return refused ?? Results.Json(new { discarded = store.Discard(letters!.Select(l => l.Id).ToList(), body.Reason) });
        }

        var (filter, badFilter) = Check(body);
        return badFilter ?? Results.Json(new { discarded = store.Discard(filter!, body.Reason) });
    }

    /// <summary>The letters a replay or discard names: every id must exist (else 404, nothing done), or a filter's pending letters.</summary>
    private static (IReadOnlyList<DeadLetter>? Letters, IResult? Refused) Letters(DeadLetterStore store, BatchBody body)
    {
        if (body.Ids is not null && body.Filter is null)
        {
            if (body.Ids.Count is 0 or > MaxBatch) { return (null, Error(400, $"ids: give from 1 to {MaxBatch} letter ids")); }
            var letters = new List<DeadLetter>();
            foreach (var id in body.Ids.Distinct())
            {
                if (store.Get(id) is not { } letter) { return (null, NotFound(id)); }
                letters.Add(letter);
            }

            return (letters, null);
        }

        var (filter, bad) = Check(body);
        return bad is not null ? (null, bad) : (store.Find(filter! with { Status = DeadLetterStore.Pending }, MaxBatch).Items.Reverse().ToList(), null);
    }

    private static (DeadLetterFilter? Filter, IResult? Bad) Check(BatchBody body)
    {
        if ((body.Ids is null) == (body.Filter is null)) { return (null, Error(400, "body: give either ids (letter ids) or filter ({ recipe, source, status, reason, since, until }), not both")); }
        var (filter, bad) = Filter(body.Filter!, "filter.");
        return bad is not null ? (null, Error(400, bad)) : (filter, null);
    }

    private static (DeadLetterFilter? Filter, string? Bad) Filter(FilterBody f, string prefix)
    {
        var status = Empty(f.Status);
        if (status is not null && status != "all" && !DeadLetterFilter.Statuses.Contains(status))
        {
            return (null, $"{prefix}status: '{status}' is not one of {string.Join(", ", DeadLetterFilter.Statuses)}, all");
        }

        var (since, badSince) = Instant(f.Since, prefix + "since");
        var (until, badUntil) = Instant(f.Until, prefix + "until");
        if ((badSince ?? badUntil) is { } bad) { return (null, bad); }
        if (since is not null && until is not null && until <= since) { return (null, $"{prefix}until: {f.Until} is not after {prefix}since {f.Since}"); }
        return (new DeadLetterFilter(Empty(f.Recipe), Empty(f.Source), status == "all" ? null : status, Empty(f.Reason), since, until), null);
    }

    private static string? Empty(string? text) => string.IsNullOrEmpty(text) ? null : text;

    private static object Whole(DeadLetterStore store, DeadLetter l) => new
    {
        id = l.Id, recipe = l.Recipe, source = l.Source, status = l.Status, reason = l.Reason, position = l.Position, createdAt = Utc(l.CreatedAt),
        replayedAt = Utc(l.ReplayedAt), discardReason = l.DiscardReason, raw = l.Payload,
        edits = store.Edits(l.Id).Select(e => new { at = Utc(e.At), by = e.By, note = e.Note, before = e.Before, after = e.After }),
    };

    private static bool TryId(string text, out long id) => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out id);

    private static IResult BadId(string text) => Error(400, $"id: '{text}' is not a dead-letter id (a whole number, see GET /api/deadletters)");

    private static IResult NotFound(long id) => Error(404, $"id: no dead letter with id {id}");

    private sealed record EditBody(string? Raw, string? Note);

    private sealed record FilterBody(string? Recipe, string? Source, string? Status, string? Reason, string? Since, string? Until);

    private sealed record BatchBody(IReadOnlyList<long>? Ids, FilterBody? Filter, string? Reason);
}
