using System.Security.Cryptography;
using System.Text;
using Sluice.Core;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>
/// Turns a PII value (an e-mail address) into a keyed hash: HMAC-SHA256, first 16 bytes as hex. Equal values give equal
/// hashes (counting distinct customers still works), but without the key nobody can test guesses against the tables.
/// The key is <c>SLUICE_PII_KEY</c> when set, else 32 random bytes created once in <c>&lt;data&gt;/keys/pii.key</c>.
/// </summary>
public sealed class PiiHasher
{
    public const string KeyVariable = "SLUICE_PII_KEY";

    private readonly byte[] _key;

    public PiiHasher(byte[] key)
    {
        _key = key;
        _utf8Lookup = _utf8Cache.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public static PiiHasher ForDataFolder(DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (Environment.GetEnvironmentVariable(KeyVariable) is { Length: > 0 } configured)
        {
            return new PiiHasher(Encoding.UTF8.GetBytes(configured));
        }

        var folder = Path.Combine(data.Root, "keys");
        var path = Path.Combine(folder, "pii.key");
        Directory.CreateDirectory(folder);
        if (!File.Exists(path))
        {
            var fresh = RandomNumberGenerator.GetBytes(32);
            var temp = path + $".{Environment.ProcessId}.tmp";
            Core.IO.PrivateFiles.Write(temp, fresh);
            try
            {
                // Two processes starting at once must agree on one key: the first rename wins, the other reads it.
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException)
            {
                File.Delete(temp);
            }
        }

        return new PiiHasher(File.ReadAllBytes(path));
    }

    // HMAC costs microseconds per call and customers recur: remember recent answers (bounded; cleared when full).
    private const int CacheSize = 200_000;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _cache = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<byte[], byte[]> _utf8Cache = new(Utf8KeyComparer.Instance);

    // Made once: asking for the lookup checks the comparer's interfaces each time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<byte[], byte[]>.AlternateLookup<ReadOnlySpan<byte>> _utf8Lookup;

    public string Hash(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (_cache.TryGetValue(value, out var known))
        {
            return known;
        }

        if (_cache.Count >= CacheSize) { _cache.Clear(); }
        return _cache[value] = Convert.ToHexStringLower(Mac(Encoding.UTF8.GetBytes(value)));
    }

    /// <summary>The hash of a UTF-8 value, as the UTF-8 of its hex text (the same text <see cref="Hash(string)"/> gives); looked up without a string.</summary>
    public byte[] Hash(ReadOnlySpan<byte> utf8)
    {
        var lookup = _utf8Lookup;
        if (lookup.TryGetValue(utf8, out var known))
        {
            return known;
        }

        if (_utf8Cache.Count >= CacheSize) { _utf8Cache.Clear(); }
        var hex = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(Mac(utf8)));
        lookup[utf8] = hex;
        return hex;
    }

    private byte[] Mac(ReadOnlySpan<byte> utf8)
    {
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, utf8, mac);
        return mac[..16].ToArray();
    }

    /// <summary>Byte-array keys compared by content, also looked up by a span of bytes.</summary>
    private sealed class Utf8KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly Utf8KeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate) => (int)System.IO.Hashing.XxHash3.HashToUInt64(alternate);

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
