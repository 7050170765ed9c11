using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Sluice.Core.IO;

namespace Sluice.Connectors.HttpIngest;

/// <summary>
/// The dedup keys a stream has seen within its window, as 64-bit hashes of (tenant, key), in memory: a table for
/// lookups (<see cref="KeyMinutes"/>) plus one list per minute of arrival, so whole minutes expire at once. Bounded:
/// past <c>max_keys</c> the oldest minutes are forgotten first (the effective window is then shorter;
/// <c>sluice_dedup_keys</c> shows it).
/// Durable without a write of its own: a key is in the landing log with its event until the segment is deleted, and
/// a retiring segment's keys are first appended to <c>dedup/&lt;hour&gt;.keys</c> files, read back at start.
/// Not thread-safe: the ingest path calls it under its stream's lock.
/// </summary>
public sealed class DedupIndex
{
    private const int EntryBytes = 16;
    private readonly KeyMinutes _keys = new();
    private readonly SortedDictionary<long, List<ulong>> _minutes = [];
    private readonly TimeSpan _window;
    private readonly int _maxKeys;
    private readonly string _folder;

    public DedupIndex(string folder, TimeSpan window, int maxKeys)
    {
        _folder = folder;
        _window = window;
        _maxKeys = maxKeys;
        Directory.CreateDirectory(folder);
    }

    public int Count => _keys.Count;

    /// <summary>Arrival time (Unix ms) of the oldest key still remembered, or null.</summary>
    public long? OldestMinuteMs => _minutes.Count == 0 ? null : _minutes.Keys.First() * 60_000;

    public static ulong Hash(string tenant, string key)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(key);
        // The UTF-8 of tenant, a zero byte and the key, hashed without a string or array per event.
        var max = Encoding.UTF8.GetMaxByteCount(tenant.Length + key.Length + 1);
        byte[]? rented = max > 512 ? ArrayPool<byte>.Shared.Rent(max) : null;
        Span<byte> buffer = rented ?? stackalloc byte[512];
        var length = Encoding.UTF8.GetBytes(tenant, buffer);
        buffer[length++] = 0;
        length += Encoding.UTF8.GetBytes(key, buffer[length..]);
        var hash = XxHash3.HashToUInt64(buffer[..length]);
        if (rented is not null) { ArrayPool<byte>.Shared.Return(rented); }
        // 0 means "no dedup key" in the log's records.
        return hash == 0 ? 1 : hash;
    }

    public bool Contains(ulong hash) => _keys.ContainsKey(hash);

    public void Add(ulong hash, long receivedMs)
    {
        if (hash == 0 || !_keys.TryAdd(hash, receivedMs / 60_000))
        {
            return;
        }

        var minute = receivedMs / 60_000;
        if (!_minutes.TryGetValue(minute, out var list)) { _minutes[minute] = list = []; }
        list.Add(hash);
        if (_keys.Count > _maxKeys) { EvictOldest(); }
    }

    /// <summary>Forgets keys older than the window.</summary>
    public void Expire(long nowMs)
    {
        var limit = (nowMs - (long)_window.TotalMilliseconds) / 60_000;
        while (_minutes.Count > 0 && _minutes.Keys.First() < limit) { EvictOldest(); }
    }

    private void EvictOldest()
    {
        var (minute, list) = _minutes.First();
        _minutes.Remove(minute);
        foreach (var h in list)
        {
            if (_keys.TryGetValue(h, out var m) && m == minute) { _keys.Remove(h); }
        }
    }

    /// <summary>Keeps the keys of a segment about to be deleted: appended per hour of arrival, fsynced before the segment goes.</summary>
    public void Persist(IEnumerable<(ulong Hash, long ReceivedMs)> keys, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var oldest = nowMs - (long)_window.TotalMilliseconds;
        foreach (var hour in keys.Where(k => k.Hash != 0 && k.ReceivedMs >= oldest).GroupBy(k => k.ReceivedMs / 3_600_000))
        {
            var buffer = new byte[hour.Count() * EntryBytes];
            var at = 0;
            foreach (var (hash, ms) in hour)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(at), hash);
                BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(at + 8), ms);
                at += EntryBytes;
            }

            var path = Path.Combine(_folder, hour.Key.ToString(CultureInfo.InvariantCulture) + ".keys");
            var created = !File.Exists(path);
            using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            stream.Write(buffer);
            stream.Flush(flushToDisk: true);
            if (created) { FileSync.Directory(_folder); }
        }

        foreach (var file in Directory.EnumerateFiles(_folder, "*.keys"))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out var hour) && (hour + 1) * 3_600_000 < oldest)
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>Reads the persisted keys still inside the window (a torn last entry from a crash is ignored).</summary>
    public void Load(long nowMs)
    {
        var oldest = nowMs - (long)_window.TotalMilliseconds;
        foreach (var file in Directory.EnumerateFiles(_folder, "*.keys").Order(StringComparer.Ordinal))
        {
            var bytes = File.ReadAllBytes(file);
            for (var at = 0; at + EntryBytes <= bytes.Length; at += EntryBytes)
            {
                var ms = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 8));
                if (ms >= oldest) { Add(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at)), ms); }
            }
        }
    }
}
