using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Sluice.Core.Pipeline;
using Sluice.Core.Schema;

namespace Sluice.Core.Status;

/// <summary>
/// Records flowing through one pipeline, for whoever listens (<c>sluice tap</c>): read-only copies as JSON lines.
/// Costs one volatile read per batch while nobody listens. Bounded everywhere: at most <see cref="MaxListeners"/>
/// listeners, each with a buffer of <see cref="Buffer"/> lines that drops what a slow reader has no room for, and at
/// most <see cref="RowsPerBatch"/> rows of a batch copied, so a tap never slows the pipeline or holds its memory.
/// </summary>
public sealed class TapHub
{
    /// <summary>A tap is for a person looking at a sample; a few at once is plenty.</summary>
    public const int MaxListeners = 4;

    /// <summary>Lines waiting for a listener; a terminal shows far fewer per second than this.</summary>
    public const int Buffer = 256;

    /// <summary>Rows copied per batch and listener: a sample, not the stream (a batch may hold 50,000 rows).</summary>
    public const int RowsPerBatch = 64;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly Lock _lock = new();
    private volatile TapListener[] _listeners = [];

    public bool Listening => _listeners.Length > 0;

    /// <summary>Starts listening to the records read from the source (after the steps; <paramref name="sink"/> null) or committed by one sink. Null when <see cref="MaxListeners"/> already listen.</summary>
    public TapListener? Listen(string? sink)
    {
        lock (_lock)
        {
            if (_listeners.Length >= MaxListeners) { return null; }
            var listener = new TapListener(this, sink);
            _listeners = [.. _listeners, listener];
            return listener;
        }
    }

    internal void Remove(TapListener listener)
    {
        lock (_lock) { _listeners = _listeners.Where(l => l != listener).ToArray(); }
    }

    /// <summary>A batch read (<paramref name="sink"/> null) or committed by a sink.</summary>
    public void Publish(string? sink, RecordBatch batch)
    {
        var listeners = _listeners;
        if (listeners.Length == 0) { return; }
        foreach (var l in listeners)
        {
            if (!string.Equals(l.Sink, sink, StringComparison.Ordinal)) { continue; }
            foreach (var line in Lines(sink, batch).Take(RowsPerBatch))
            {
                l.Offer(line);
            }
        }
    }

    /// <summary>
    /// Rows of a dropped file as they are read (a files pipeline has no batches in hand: rows go from the parser to
    /// Parquet); they carry the file's name where a stream's rows carry a position.
    /// </summary>
    public void Publish(string? sink, ColumnBatch table, string file)
    {
        ArgumentNullException.ThrowIfNull(table);
        var listeners = _listeners;
        if (listeners.Length == 0) { return; }
        List<string>? lines = null;
        foreach (var l in listeners)
        {
            if (!string.Equals(l.Sink, sink, StringComparison.Ordinal)) { continue; }
            lines ??= Rows(table).Take(RowsPerBatch).Select(record => JsonSerializer.Serialize(new { table = table.Schema.Table, file, sink, record }, Json)).ToList();
            foreach (var line in lines) { l.Offer(line); }
        }
    }

    /// <summary>Records of a source that has no batches in hand (a dropped file's outcome), already as objects.</summary>
    public void Publish(string? sink, Func<object> record)
    {
        var listeners = _listeners;
        if (listeners.Length == 0) { return; }
        string? line = null;
        foreach (var l in listeners)
        {
            if (!string.Equals(l.Sink, sink, StringComparison.Ordinal)) { continue; }
            line ??= JsonSerializer.Serialize(new { sink, record = record() }, Json);
            l.Offer(line);
        }
    }

    private static IEnumerable<string> Lines(string? sink, RecordBatch batch) =>
        batch.Tables.SelectMany(table => Rows(table).Select(record => JsonSerializer.Serialize(new { table = table.Schema.Table, position = batch.Position, sink, record }, Json)));

    private static IEnumerable<Dictionary<string, object?>> Rows(ColumnBatch table)
    {
        var fields = table.Schema.Fields;
        for (var row = 0; row < table.Count; row++)
        {
            var record = new Dictionary<string, object?>(fields.Count, StringComparer.Ordinal);
            for (var c = 0; c < fields.Count; c++) { record[fields[c].Name] = table.Value(c, row); }
            yield return record;
        }
    }
}

/// <summary>One listener of a <see cref="TapHub"/>; dispose to stop listening.</summary>
public sealed class TapListener : IDisposable
{
    private readonly TapHub _hub;
    private readonly Channel<string> _lines = Channel.CreateBounded<string>(new BoundedChannelOptions(TapHub.Buffer) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    private long _dropped;

    internal TapListener(TapHub hub, string? sink)
    {
        _hub = hub;
        Sink = sink;
    }

    public string? Sink { get; }

    /// <summary>Lines not delivered because the reader was behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public ChannelReader<string> Lines => _lines.Reader;

    /// <summary>Never waits: with no room (the reader is behind) the line is counted and dropped.</summary>
    internal void Offer(string line)
    {
        if (!_lines.Writer.TryWrite(line)) { Interlocked.Increment(ref _dropped); }
    }

    public void Dispose()
    {
        _hub.Remove(this);
        _lines.Writer.TryComplete();
    }
}
