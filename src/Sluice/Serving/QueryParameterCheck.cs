using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Sluice.Serving;

/// <summary>
/// Refuses (400, naming the parameter) a query string with a control character (NUL, a line break...) in any
/// parameter's name or value, before any endpoint sees it. Such text is never a tenant, an instant or an option,
/// and parsers downstream may stop at a NUL: <c>tenant=acme%00</c> or <c>from=2025-11-01%00</c> must not be read as
/// <c>acme</c> or <c>2025-11-01</c>.
/// </summary>
internal static class QueryParameterCheck
{
    public static Task InvokeAsync(HttpContext http, Func<Task> next)
    {
        foreach (var (key, values) in http.Request.Query)
        {
            if (FirstControl(key) is { } inKey)
            {
                return HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, $"a query parameter's name has the control character {Describe(inKey)}; remove it", Printable(key));
            }

            foreach (var value in values)
            {
                if (value is not null && FirstControl(value) is { } c)
                {
                    return HttpResults.ErrorAsync(http, StatusCodes.Status400BadRequest, $"parameter '{Printable(key)}' has the control character {Describe(c)} in its value; remove it", Printable(key));
                }
            }
        }

        return next();
    }

    private static char? FirstControl(string text)
    {
        foreach (var c in text)
        {
            if (char.IsControl(c)) { return c; }
        }

        return null;
    }

    private static string Describe(char c) => string.Create(CultureInfo.InvariantCulture, $"U+{(int)c:X4}");

    private static string Printable(string key) => string.Concat(key.Select(c => char.IsControl(c) ? '?' : c));
}
