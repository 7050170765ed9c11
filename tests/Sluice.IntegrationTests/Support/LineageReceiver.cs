using System.Net;
using System.Text.Json;

namespace Sluice.IntegrationTests.Support;

/// <summary>A stand-in OpenLineage server on 127.0.0.1: records every event posted to <c>/api/v1/lineage</c>.</summary>
internal sealed class LineageReceiver : IDisposable
{
    private readonly HttpListener _listener;
    private readonly List<JsonElement> _events = [];
    private readonly Task _loop;

    public LineageReceiver()
    {
        (_listener, Url) = FreeHttpListener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public string Url { get; }

    /// <summary>Requests to any other path (there should be none).</summary>
    public int WrongPath { get; private set; }

    public IReadOnlyList<JsonElement> Events
    {
        get { lock (_events) { return _events.ToList(); } }
    }

    /// <summary>The events of one job name, in the order they arrived.</summary>
    public List<JsonElement> Of(string job) =>
        Events.Where(e => e.GetProperty("job").GetProperty("name").GetString() == job).ToList();

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            if (context.Request.HttpMethod == "POST" && context.Request.Url!.AbsolutePath == "/api/v1/lineage")
            {
                using var doc = await JsonDocument.ParseAsync(context.Request.InputStream);
                lock (_events) { _events.Add(doc.RootElement.Clone()); }
                context.Response.StatusCode = 201;
            }
            else
            {
                WrongPath++;
                context.Response.StatusCode = 404;
            }

            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
