namespace Sluice.Connectors.Http;

/// <summary>
/// <c>sluice validate --connect</c>: the API at an http sink's <c>url</c> answers (within 5 s). A HEAD request, so
/// nothing is delivered; any answer, even 404 or 405, shows that the server is there.
/// </summary>
internal static class HttpSinkPreflight
{
    public static async Task<IReadOnlyList<string>> CheckAsync(Uri url, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, url);
            using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
            return [];
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return [$"url: {url.GetLeftPart(UriPartial.Path)} does not answer: {Core.Recipes.ConnectionCheck.Cause(e)}"];
        }
    }
}
