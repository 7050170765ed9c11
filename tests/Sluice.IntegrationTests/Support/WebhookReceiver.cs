using System.Net;
using System.Text.Json;

namespace Sluice.IntegrationTests.Support;

/// <summary>
/// A local HTTP receiver for webhook POSTs on 127.0.0.1: keeps the JSON bodies it accepted, and answers 503 to the
/// first <see cref="FailNext"/> requests (a receiver that is down, then up). Binds a free port
/// (<see cref="FreeHttpListener"/>).
/// </summary>
internal sealed class WebhookReceiver : IDisposable
{
    private readonly HttpListener _listener;
    private readonly List<JsonElement> _accepted = [];
    private readonly Task _loop;
    private int _failNext;
    private int _requests;

    public WebhookReceiver()
    {
        (_listener, var url) = FreeHttpListener.Start();
        Url = url + "alerts";
        _loop = Task.Run(ServeAsync);
    }

    public string Url { get; }

    /// <summary>Requests still to be answered 503.</summary>
    public int FailNext
    {
        get => Volatile.Read(ref _failNext);
        set => Volatile.Write(ref _failNext, value);
    }

    /// <summary>A status every request is answered with (a receiver that will never take the notice), or 0.</summary>
    public int RefuseWith { get; init; }

    /// <summary>Every request, refused ones included.</summary>
    public int Requests => Volatile.Read(ref _requests);

    public IReadOnlyList<JsonElement> Accepted
    {
        get { lock (_accepted) { return _accepted.ToList(); } }
    }

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

            Interlocked.Increment(ref _requests);
            if (RefuseWith != 0)
            {
                context.Response.StatusCode = RefuseWith;
            }
            else if (Interlocked.Decrement(ref _failNext) >= 0)
            {
                context.Response.StatusCode = 503;
            }
            else
            {
                Interlocked.Exchange(ref _failNext, 0);
                using var doc = await JsonDocument.ParseAsync(context.Request.InputStream);
                lock (_accepted) { _accepted.Add(doc.RootElement.Clone()); }
                context.Response.StatusCode = context.Request.HttpMethod == "POST" && context.Request.ContentType == "application/json" ? 200 : 400;
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
