using System.Net;
using System.Text.Json;
using Sluice.Connectors.Http;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>
/// The <c>http</c> sink against a local API that behaves as an idempotent one does: a request whose
/// <c>Idempotency-Key</c> it has taken already is answered 200 and not taken again. Broken, it answers 503.
/// </summary>
public sealed class HttpSinkFixture : SinkFixture
{
    private readonly IdempotentApi _api = new();

    public override Engine Engine { get; } = new();

    public override SinkKind Kind => SinkKind.Append;

    public override ISinkType Type => new HttpSinkType();

    public override string MirrorOption => "url: http://127.0.0.1:9/\nmode: mirror\n";

    public override IBatchSink Create(ITransientFault? fault = null) => new HttpSink(Engine.Services, PipelineRun.Recipe, new HttpSinkOptions
    {
        Url = new Uri(_api.Url),
        Table = "items",
        RetryDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(500),
        Retries = 8,
    });

    public override Task<List<string>> ReadAsync() => Task.FromResult(_api.Rows.Select(row =>
        SinkRows.Text(row.EnumerateObject().Select(p => (p.Name, p.Value.ValueKind == JsonValueKind.Null ? null : (object?)(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText())))))
        .Order(StringComparer.Ordinal).ToList());

    public override Task<ITransientFault> FaultAsync() => Task.FromResult<ITransientFault>(_api);

    protected override async Task CleanUpAsync()
    {
        await _api.DisposeAsync();
    }

    /// <summary>The API: rows of the requests it took, in order; 503 while broken.</summary>
    private sealed class IdempotentApi : ITransientFault
    {
        private readonly HttpListener _listener;
        private readonly HashSet<string> _keys = [];
        private readonly List<JsonElement> _rows = [];
        private readonly Task _loop;
        private volatile bool _broken;
        private int _failures;

        public IdempotentApi()
        {
            (_listener, Url) = FreeHttpListener.Start("items/");
            _loop = Task.Run(ServeAsync);
        }

        public string Url { get; }

        public int Failures => Volatile.Read(ref _failures);

        public IReadOnlyList<JsonElement> Rows
        {
            get { lock (_rows) { return _rows.ToList(); } }
        }

        public void Break() => _broken = true;

        public void Heal() => _broken = false;

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

                using var body = new StreamReader(context.Request.InputStream);
                var text = await body.ReadToEndAsync();
                if (_broken)
                {
                    Interlocked.Increment(ref _failures);
                    context.Response.StatusCode = 503;
                }
                else
                {
                    var key = context.Request.Headers["Idempotency-Key"] ?? "";
                    lock (_rows)
                    {
                        if (_keys.Add(key)) { _rows.AddRange(JsonDocument.Parse(text).RootElement.EnumerateArray().Select(e => e.Clone())); }
                    }

                    context.Response.StatusCode = 200;
                }

                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_listener.IsListening) { return; }
            _listener.Stop();
            await _loop;
            _listener.Close();
        }
    }
}
