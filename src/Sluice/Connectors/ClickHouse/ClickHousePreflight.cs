namespace Sluice.Connectors.ClickHouse;

/// <summary><c>sluice validate --connect</c>: the ClickHouse server at a sink's <c>url</c> answers <c>SELECT 1</c> (within 5 s).</summary>
internal static class ClickHousePreflight
{
    public static async Task<IReadOnlyList<string>> CheckAsync(Uri url, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var body = new StringContent("SELECT 1");
            using var response = await http.PostAsync(url, body, ct).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode && text.Trim() == "1"
                ? []
                : [$"url: {url.GetLeftPart(UriPartial.Authority)} answered {(int)response.StatusCode} to SELECT 1, not as ClickHouse does: {text.Trim().Split('\n')[0]}"];
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return [$"url: clickhouse at {url.GetLeftPart(UriPartial.Authority)} does not answer: {Core.Recipes.ConnectionCheck.Cause(e)}"];
        }
    }
}
