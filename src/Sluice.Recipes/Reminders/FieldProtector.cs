using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Sluice.Core;

namespace Sluice.Recipes.Reminders;

/// <summary>
/// Protects personal data at rest. <see cref="Key"/> is a keyed hash (HMAC-SHA256, 128 bits shown as hex): equal
/// inputs give equal keys, so joins and tenant filters work on it, but it cannot be reversed. <see cref="Encrypt"/> is
/// AES-256-GCM with a random nonce, written as <c>enc1:&lt;key id&gt;:&lt;base64url(nonce|ciphertext|tag)&gt;</c>; only
/// <see cref="Decrypt"/> with the same key reads it back (for the outgoing mail). Both keys derive from one 32-byte
/// master key with HKDF, so one secret is configured. Thread-safe.
/// </summary>
public sealed class FieldProtector : IDisposable
{
    public const string Prefix = "enc1:";
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    // Repeated values (a client's id on every event, an attorney's address) are encrypted once per process: the
    // ciphertext then repeats like the value does, which reveals no more than the keyed hash already does. Cleared
    // when full, so it stays bounded.
    private const int CacheLimit = 100_000;

    private readonly byte[] _macKey;
    private readonly ThreadLocal<AesGcm> _aes;
    private readonly ThreadLocal<NonceSource> _nonces = new(() => new NonceSource());
    private readonly ConcurrentDictionary<string, string> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _keys = new(StringComparer.Ordinal);

    public FieldProtector(ReadOnlySpan<byte> masterKey)
    {
        if (masterKey.Length != 32)
        {
            throw new SluiceException($"the reminder key must be 32 bytes, got {masterKey.Length}.");
        }

        var master = masterKey.ToArray();
        _macKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, 32, info: "sluice/reminders/hash"u8.ToArray());
        var encKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, 32, info: "sluice/reminders/encrypt"u8.ToArray());
        KeyId = Convert.ToHexStringLower(SHA256.HashData(master))[..8];
        _aes = new ThreadLocal<AesGcm>(() => new AesGcm(encKey, TagBytes), trackAllValues: true);
    }

    /// <summary>Names the master key in ciphertexts, so a wrong key is reported as such rather than as corrupt data.</summary>
    public string KeyId { get; }

    public string Key(string value)
    {
        if (_keys.TryGetValue(value, out var known))
        {
            return known;
        }

        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_macKey, Encoding.UTF8.GetBytes(value), mac);
        var key = Convert.ToHexStringLower(mac[..16]);
        if (_keys.Count >= CacheLimit) { _keys.Clear(); }
        _keys[value] = key;
        return key;
    }

    /// <summary>Encrypts a short value, reusing the ciphertext of a value seen before (see the cache note).</summary>
    public string EncryptValue(string value)
    {
        if (_cache.TryGetValue(value, out var known))
        {
            return known;
        }

        var text = Encrypt(Encoding.UTF8.GetBytes(value));
        if (_cache.Count >= CacheLimit) { _cache.Clear(); }
        _cache[value] = text;
        return text;
    }

    /// <summary>Encrypts bytes (a whole raw payload) with a fresh nonce.</summary>
    public string Encrypt(ReadOnlySpan<byte> plaintext)
    {
        var buffer = new byte[NonceBytes + plaintext.Length + TagBytes];
        var nonce = buffer.AsSpan(0, NonceBytes);
        _nonces.Value!.Next(nonce);
        _aes.Value!.Encrypt(nonce, plaintext, buffer.AsSpan(NonceBytes, plaintext.Length), buffer.AsSpan(NonceBytes + plaintext.Length), null);
        return Prefix + KeyId + ":" + Base64Url(buffer);
    }

    public byte[] DecryptBytes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || text.Length < Prefix.Length + 9 || text[Prefix.Length + 8] != ':')
        {
            throw new SluiceException("not an encrypted value (expected enc1:<key id>:<data>).");
        }

        var kid = text.Substring(Prefix.Length, 8);
        if (kid != KeyId)
        {
            throw new SluiceException($"value was encrypted with key {kid}, but the configured key is {KeyId}.");
        }

        var data = FromBase64Url(text.AsSpan(Prefix.Length + 9));
        if (data.Length < NonceBytes + TagBytes)
        {
            throw new SluiceException("encrypted value is truncated.");
        }

        var plain = new byte[data.Length - NonceBytes - TagBytes];
        try
        {
            _aes.Value!.Decrypt(data.AsSpan(0, NonceBytes), data.AsSpan(NonceBytes, plain.Length), data.AsSpan(NonceBytes + plain.Length), plain, null);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new SluiceException("encrypted value does not authenticate: it was altered or belongs to another key.", e);
        }

        return plain;
    }

    public string Decrypt(string text) => Encoding.UTF8.GetString(DecryptBytes(text));

    public void Dispose()
    {
        foreach (var aes in _aes.Values) { aes.Dispose(); }
        _aes.Dispose();
        _nonces.Dispose();
    }

    private static string Base64Url(byte[] data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    private static byte[] FromBase64Url(ReadOnlySpan<char> text)
    {
        try
        {
            return System.Buffers.Text.Base64Url.DecodeFromChars(text);
        }
        catch (FormatException e)
        {
            throw new SluiceException("encrypted value is not valid base64url.", e);
        }
    }

    /// <summary>
    /// Random nonces drawn from the system generator a few hundred at a time: one system call per 4 KiB instead of
    /// one per value, which is most of the cost of encrypting a small payload.
    /// </summary>
    private sealed class NonceSource
    {
        private readonly byte[] _pool = new byte[4096 - (4096 % NonceBytes)];
        private int _next;

        public NonceSource() => _next = _pool.Length;

        public void Next(Span<byte> nonce)
        {
            if (_next == _pool.Length)
            {
                RandomNumberGenerator.Fill(_pool);
                _next = 0;
            }

            _pool.AsSpan(_next, NonceBytes).CopyTo(nonce);
            _next += NonceBytes;
        }
    }
}
