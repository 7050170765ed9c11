using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Sluice.Core.IO;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// The dedup keys a stream has seen within its window, as 64-bit hashes of (tenant, key), in memory: a table from key to
/// arrival second (<see cref="KeyArrivals"/>) plus how many keys arrived in each second, so expiry and eviction know
/// where to cut. Bounded: past <c>max_keys</c> the oldest seconds are forgotten first, a sixteenth of the keys at a
/// time (the effective window is then shorter; <c>sluice_dedup_keys</c> shows it).
/// Durable without a write of its own: a key is in the landing log with its event until the segment is deleted, and
/// a retiring segment's keys are first appended to <c>dedup/&lt;hour&gt;.keys</c> files, read back at start.
/// Not thread-safe: the ingest path calls it under its stream's lock.
/// </summary>
public sealed class DedupIndex
{
    private const int EntryBytes = 16;
    private const int PersistBufferBytes = 64 * 1024;
    private readonly KeyArrivals _keys = new();
    private readonly SortedDictionary<uint, int> _perSecond = [];

    // Arrivals of the latest second not yet counted in _perSecond: nearly every key arrives in the same second as the
    // one before, and a sorted dictionary's update per key cost more than the table's own insert.
    private uint _recentSecond;
    private int _recentCount;
    private readonly List<ulong> _doomed = [];
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

    public static ulong Hash(string tenant, string key)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(key);
        return Hash(Encoding.UTF8.GetBytes(tenant), Encoding.UTF8.GetBytes(key));
    }

    /// <summary>The hash of the UTF-8 of tenant, a zero byte and the key (never 0, which means "no dedup key" in the log's records).</summary>
    public static ulong Hash(ReadOnlySpan<byte> tenant, ReadOnlySpan<byte> key)
    {
        var length = tenant.Length + 1 + key.Length;
        byte[]? rented = length > 512 ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> buffer = rented ?? stackalloc byte[512];
        tenant.CopyTo(buffer);
        buffer[tenant.Length] = 0;
        key.CopyTo(buffer[(tenant.Length + 1)..]);
        var hash = XxHash3.HashToUInt64(buffer[..length]);
        if (rented is not null) { ArrayPool<byte>.Shared.Return(rented); }
        return hash == 0 ? 1 : hash;
    }

    public bool Contains(ulong hash) => _keys.ContainsKey(hash);

    /// <summary>A hint that <paramref name="hash"/> is looked up soon (see <see cref="KeyArrivals.Prefetch"/>).</summary>
    public void Prefetch(ulong hash) => _keys.Prefetch(hash);

    /// <summary>Remembers a key; false when it is already known (a duplicate) or 0 (no key).</summary>
    public bool Add(ulong hash, long receivedMs)
    {
        var second = Second(receivedMs);
        if (hash == 0 || !_keys.TryAdd(hash, second))
        {
            return false;
        }

        if (_recentCount > 0 && second != _recentSecond) { CountRecent(); }
        _recentSecond = second;
        _recentCount++;
        if (_keys.Count > _maxKeys)
        {
            CountRecent();
            // Forget the oldest seconds until a sixteenth is free, so the table is scanned once per many additions.
            var target = _maxKeys - Math.Max(1, _maxKeys / 16);
            var left = _keys.Count;
            var cut = second;
            foreach (var (s, n) in _perSecond)
            {
                cut = s + 1;
                left -= n;
                if (left <= target) { break; }
            }

            ForgetBefore(cut);
        }

        return true;
    }

    /// <summary>Takes back a key <see cref="Add"/> just took, whose event did not land after all: a retry of it is not a duplicate.</summary>
    public void Withdraw(ulong hash)
    {
        if (hash == 0 || !_keys.TryGetValue(hash, out var second)) { return; }
        _keys.Remove(hash);
        CountRecent();
        if (_perSecond.TryGetValue(second, out var n))
        {
            if (n > 1) { _perSecond[second] = n - 1; } else { _perSecond.Remove(second); }
        }
    }

    private void CountRecent()
    {
        if (_recentCount == 0) { return; }
        _perSecond[_recentSecond] = _perSecond.GetValueOrDefault(_recentSecond) + _recentCount;
        _recentCount = 0;
    }

    /// <summary>Forgets keys older than the window.</summary>
    public void Expire(long nowMs)
    {
        var limit = Second(nowMs - (long)_window.TotalMilliseconds);
        CountRecent();
        if (_perSecond.Count > 0 && _perSecond.Keys.First() < limit) { ForgetBefore(limit); }
    }

    private void ForgetBefore(uint second)
    {
        _doomed.Clear();
        _keys.CollectBefore(second, _doomed);
        foreach (var h in _doomed) { _keys.Remove(h); }
        while (_perSecond.Count > 0 && _perSecond.Keys.First() < second) { _perSecond.Remove(_perSecond.Keys.First()); }
        _doomed.Clear();
        if (_doomed.Capacity > 1 << 16) { _doomed.Capacity = 1 << 16; }
    }

    /// <summary>Unix seconds as the table keeps them (0 before 1970; an unsigned second lasts until 2106).</summary>
    private static uint Second(long ms) => (uint)Math.Clamp(ms / 1000, 0, uint.MaxValue);

    /// <summary>
    /// Keeps the keys of a segment about to be deleted: appended per hour of arrival, fsynced before the segment goes.
    /// Streamed through one bounded buffer: a segment holds a hundred thousand keys and more, and collecting them first
    /// (a list, then a group per hour) allocated megabytes on the large object heap per segment, each a push towards a
    /// full collection.
    /// </summary>
    public void Persist(IEnumerable<(ulong Hash, long ReceivedMs)> keys, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var oldest = nowMs - (long)_window.TotalMilliseconds;
        var buffer = ArrayPool<byte>.Shared.Rent(PersistBufferBytes);
        var files = new Dictionary<long, FileStream>();
        var created = false;
        try
        {
            var at = 0;
            var hour = long.MinValue;
            foreach (var (hash, ms) in keys)
            {
                if (hash == 0 || ms < oldest) { continue; }
                var keyHour = ms / 3_600_000;
                if (keyHour != hour || at + EntryBytes > buffer.Length)
                {
                    created |= Append(files, hour, buffer.AsSpan(0, at));
                    at = 0;
                    hour = keyHour;
                }

                BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(at), hash);
                BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(at + 8), ms);
                at += EntryBytes;
            }

            created |= Append(files, hour, buffer.AsSpan(0, at));
            foreach (var stream in files.Values) { stream.Flush(flushToDisk: true); }
            if (created) { FileSync.Directory(_folder); }
        }
        finally
        {
            foreach (var stream in files.Values) { stream.Dispose(); }
            ArrayPool<byte>.Shared.Return(buffer);
        }

        foreach (var file in Directory.EnumerateFiles(_folder, "*.keys"))
        {
            if (long.TryParse(Path.GetFileNameWithoutExtension(file), NumberStyles.None, CultureInfo.InvariantCulture, out var hour) && (hour + 1) * 3_600_000 < oldest)
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>Appends entries of one hour to its file, opened once per persist; true when the file is new.</summary>
    private bool Append(Dictionary<long, FileStream> files, long hour, ReadOnlySpan<byte> entries)
    {
        if (entries.IsEmpty) { return false; }
        var created = false;
        if (!files.TryGetValue(hour, out var stream))
        {
            var path = Path.Combine(_folder, hour.ToString(CultureInfo.InvariantCulture) + ".keys");
            created = !File.Exists(path);
            stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, 1);
            files[hour] = stream;
        }

        stream.Write(entries);
        return created;
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
