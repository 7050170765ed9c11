using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Sluice.Serving;
using Sluice.Serving.Auth;
using Sluice.Serving.OpenApi;

using Sluice.Connectors.Http.Ingest;

namespace Sluice.Serving.Query;

/// <summary>
/// <c>GET /v1/metrics?from=ISO&amp;to=ISO&amp;group_by=event_type|hour|day[&amp;tenant=T]</c>: events, revenue and unique
/// customers per group for one tenant, read from the lake. The tenant is the token's (an admin names one); the SQL is
/// parameterised and every request carries the tenant filter, whatever else it asks.
/// </summary>
internal sealed class MetricsEndpoint(MetricsApiOptions options, ServingContext context)
{
    private static readonly ReadScope Scope = new("tenant", "tenant", ["from", "to", "group_by", "tenant"], EachOnce: true);
    private readonly MetricsQuery _query = new(options, context.Services);
    // Process-wide: every query opens an in-memory DuckDB with its own memory budget.
    private static readonly SemaphoreSlim Queries = new(Math.Max(2, Environment.ProcessorCount));

    public void Map(IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/metrics", HandleWithParametersAsync)
            .WithSummary("Events, revenue and unique customers per event type, hour or day, for the token's tenant (admins name the tenant).")
            .Produces<MetricsResponse>()
            .Access(ApiAccess.Reader)
            .Produces(StatusCodes.Status400BadRequest).Produces(StatusCodes.Status401Unauthorized).Produces(StatusCodes.Status403Forbidden);
    }

    /// <summary>The parameters are declared for the OpenAPI document; they are read (and checked) from the query string.</summary>
    private Task HandleWithParametersAsync(
        HttpContext http,
        [FromQuery(Name = "from")] string? from,
        [FromQuery(Name = "to")] string? to,
        [FromQuery(Name = "group_by")] string? groupBy,
        [FromQuery(Name = "tenant")] string? tenant) => HandleAsync(http);

    public async Task HandleAsync(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (await Scope.ResolveAsync(http, context).ConfigureAwait(false) is not { } tenant)
        {
            return;
        }

        var q = http.Request.Query;
        var (from, fromError) = Instant(q, "from");
        var (to, toError) = Instant(q, "to");
        var error = fromError ?? toError;
        var parameter = fromError is not null ? "from" : "to";
        if (error is null && to <= from)
        {
            (error, parameter) = ("'to' must be after 'from'", "to");
        }
        else if (error is null && to - from > options.MaxRange)
        {
            (error, parameter) = ($"the range is longer than {options.MaxRange.TotalDays:0} days; ask for less", "to");
        }

        var groupText = q.TryGetValue("group_by", out var g) ? g.ToString() : "event_type";
        if (error is null && !MetricsQuery.TryParseGrouping(groupText, out _))
        {
            (error, parameter) = ($"group_by must be event_type, hour or day, got '{Clip(groupText)}'", "group_by");
        }

        if (error is not null)
        {
            await HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, error, parameter).ConfigureAwait(false);
            return;
        }

        _ = MetricsQuery.TryParseGrouping(groupText, out var grouping);
        // Each query opens an in-memory DuckDB with its own memory budget: a few at a time, the rest wait their turn.
        await Queries.WaitAsync(http.RequestAborted).ConfigureAwait(false);
        IReadOnlyList<MetricsRow> rows;
        try
        {
            rows = await Task.Run(() => _query.Run(tenant, from, to, grouping), http.RequestAborted).ConfigureAwait(false);
        }
        finally
        {
            Queries.Release();
        }

        await http.Response.WriteAsJsonAsync(new MetricsResponse(tenant, Format(from), Format(to), groupText, rows), http.RequestAborted).ConfigureAwait(false);
    }

    private static (DateTime Value, string? Error) Instant(IQueryCollection q, string name)
    {
        if (!q.TryGetValue(name, out var v) || v.ToString().Length == 0)
        {
            return (default, $"'{name}' is required: an ISO-8601 instant such as 2025-11-08T00:00:00Z, or a date");
        }

        var text = v.ToString();
        if (!Core.Text.Timestamps.TryParseDateOrInstant(text, out var value))
        {
            return (default, $"'{name}' is not an ISO-8601 instant or date: '{Clip(text)}'");
        }

        return (value.UtcDateTime, null);
    }

    private static string Format(DateTime utc) => utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Clip(string text) => Core.Text.TextClip.Clip(text, 40);
}

public sealed record MetricsRow(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("events")] long Events,
    [property: JsonPropertyName("revenue")] double Revenue,
    [property: JsonPropertyName("unique_customers")] long UniqueCustomers);

public sealed record MetricsResponse(
    [property: JsonPropertyName("tenant")] string Tenant,
    [property: JsonPropertyName("from")] string From,
    [property: JsonPropertyName("to")] string To,
    [property: JsonPropertyName("group_by")] string GroupBy,
    [property: JsonPropertyName("rows")] IReadOnlyList<MetricsRow> Rows);
