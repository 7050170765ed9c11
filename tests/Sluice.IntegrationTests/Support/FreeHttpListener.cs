using System.Net;

namespace Sluice.IntegrationTests.Support;

/// <summary>A stand-in server's <see cref="HttpListener"/>, started on a free port of 127.0.0.1.</summary>
internal static class FreeHttpListener
{
    /// <summary>
    /// The listener, started, and its base address (<c>http://127.0.0.1:port/</c> and <paramref name="path"/>).
    /// HttpListener cannot bind port 0, and a port FreePort found free may be taken before the bind, so a bind that
    /// finds it taken tries another port.
    /// </summary>
    public static (HttpListener Listener, string Url) Start(string path = "")
    {
        for (var attempt = 1; ; attempt++)
        {
            var url = $"http://127.0.0.1:{FreePort.Next()}/{path}";
            var listener = new HttpListener();
            listener.Prefixes.Add(url);
            try
            {
                listener.Start();
                return (listener, url);
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Close();
            }
        }
    }
}
