using System.Globalization;
using System.Text;

namespace Sluice.IntegrationTests.Reliability;

/// <summary>A JSON member whose value is raw JSON text (so it can be anything, also what a JSON library refuses to write), an object or an array of objects.</summary>
internal sealed record FuzzMember(string Name, object Value);

/// <summary>
/// Seeded generator of hostile input for the push endpoints: valid events of a shape with one member mutated (a value
/// out of its type's range, a lone surrogate, an overflowing timestamp, the wrong structure...), random JSON, random
/// bytes. Deterministic for a seed.
/// </summary>
internal sealed class EventFuzzer(int seed)
{
    private readonly Random _random = new(seed);

    public Random Random => _random;

    public static string Render(IReadOnlyList<FuzzMember> members)
    {
        var sb = new StringBuilder();
        Render(sb, members);
        return sb.ToString();
    }

    private static void Render(StringBuilder sb, IReadOnlyList<FuzzMember> members)
    {
        sb.Append('{');
        for (var i = 0; i < members.Count; i++)
        {
            if (i > 0) { sb.Append(','); }
            sb.Append('"').Append(members[i].Name).Append("\":");
            switch (members[i].Value)
            {
                case string raw: sb.Append(raw); break;
                case List<FuzzMember> obj: Render(sb, obj); break;
                case List<List<FuzzMember>> array:
                    sb.Append('[');
                    for (var k = 0; k < array.Count; k++)
                    {
                        if (k > 0) { sb.Append(','); }
                        Render(sb, array[k]);
                    }

                    sb.Append(']');
                    break;
            }
        }

        sb.Append('}');
    }

    public static string Text(string value) => "\"" + value + "\"";

    /// <summary>
    /// The event with one change: a leaf (anywhere, also inside arrays) replaced by a hostile value, a member removed,
    /// a hostile member added, or a name made invalid. Returns what was done, for failure messages.
    /// </summary>
    public string Mutate(List<FuzzMember> members)
    {
        var leaves = new List<(List<FuzzMember> Parent, int Index, string Path)>();
        Collect(members, "", leaves);
        var (parent, index, path) = leaves[_random.Next(leaves.Count)];
        switch (_random.Next(10))
        {
            case 0:
                parent.RemoveAt(index);
                return $"removed {path}";
            case 1:
                var name = Pick(["x\\ud800", "\\udc00", "a\\u0000", "日本", "\\ud83d\\ude00", parent[index].Name.ToUpperInvariant()]);
                parent.Add(new FuzzMember(name, HostileValue()));
                return $"added {name} beside {path}";
            case 2:
                parent[index] = parent[index] with { Name = parent[index].Name + Pick(["\\ud800", "\\u0041", "\\udfff"]) };
                return $"renamed {path}";
            default:
                var value = HostileValue();
                parent[index] = parent[index] with { Value = value };
                return $"{path} = {Clip(value)}";
        }
    }

    private static void Collect(List<FuzzMember> members, string prefix, List<(List<FuzzMember>, int, string)> leaves)
    {
        for (var i = 0; i < members.Count; i++)
        {
            var path = prefix + members[i].Name;
            leaves.Add((members, i, path));
            if (members[i].Value is List<FuzzMember> obj) { Collect(obj, path + ".", leaves); }
            if (members[i].Value is List<List<FuzzMember>> array)
            {
                for (var k = 0; k < array.Count; k++) { Collect(array[k], $"{path}[{k}].", leaves); }
            }
        }
    }

    /// <summary>Raw JSON for a value of any kind, most of them hostile to some declared type.</summary>
    public string HostileValue() => _random.Next(5) switch
    {
        0 => HostileNumber(),
        1 => HostileText(),
        2 => Text(HostileTimestamp()),
        3 => Pick(["[]", "{}", "[{}]", "null", "true", "false", "[1e309]", "{\"a\":[{\"b\":\"\\ud800\"}]}", "[[[[[]]]]]", "\"\""]),
        _ => RandomJson(3),
    };

    public string HostileNumber() => _random.Next(12) switch
    {
        0 => Pick(["1e309", "-1e309", "1E400", "-1e99999", "1e-400", "-0", "-0.0", "0e0"]),
        1 => Pick(["9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551616"]),
        2 => Pick(["1.7976931348623157e308", "1.7976931348623159e308", "4.9e-324", "2.2250738585072014e-308"]),
        3 => (_random.Next(2) == 0 ? "-" : "") + Digits(1 + _random.Next(400)),
        4 => Digits(1 + _random.Next(30)) + "." + Digits(1 + _random.Next(30)) + "e" + _random.Next(-500, 500).ToString(CultureInfo.InvariantCulture),
        5 => Text(Pick(["0x1F", "1e309", "NaN", "Infinity", "-Infinity", "12", " 3.5 ", "1_000", "∞"])),
        6 => (_random.NextDouble() * Math.Pow(10, _random.Next(-300, 300))).ToString("R", CultureInfo.InvariantCulture),
        7 => _random.NextInt64(long.MinValue, long.MaxValue).ToString(CultureInfo.InvariantCulture),
        _ => _random.Next(-1000, 1000).ToString(CultureInfo.InvariantCulture),
    };

    public string HostileText() => _random.Next(10) switch
    {
        0 => Text(Pick(["\\ud800", "\\udbff", "\\udc00", "\\udfff", "a\\ud800b", "\\ud800\\u0041", "\\udc00\\ud800", "\\ud83d"])),
        1 => Text(Pick(["\\u0000", "a\\u0000b", "\\u001f", "\\n\\r\\t", "\\\\ud800", "\\/"])),
        2 => Text(new string('x', _random.Next(1_000, 60_000))),
        3 => Text(string.Concat(Enumerable.Repeat("日本語😀é", _random.Next(1, 3_000)))),
        4 => Text("\\ud83d\\ude00" + string.Concat(Enumerable.Repeat("\\u00e9", _random.Next(1, 50)))),
        5 => Text(Pick(["", " ", "purchase", "PURCHASE", "page_view ", "acme", "Likely to Repeat", "service_closure"])),
        6 => Text(RandomText(_random.Next(0, 80))),
        _ => Text(Pick(["日本", "e\u0301", "🙂🙂", "ÿ", "\u2028"])),
    };

    public string HostileTimestamp()
    {
        switch (_random.Next(6))
        {
            case 0:
                return Pick(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.9999999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9999999-14:00",
                    "0000-01-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-11-08T24:00:00Z", "2025-11-08T10:30:00+15:00", "2025-11-08T10:30:00.12345678901Z",
                    "2025-11-08", "2025-11-08T10:30:00", "2025-11-08 10:30:00+0100", "20251108T103000Z", "yesterday", "-2025-11-08T10:30:00Z", "+10000-01-01T00:00:00Z"]);
            case 1:
                return "\\ud800" + "2025-11-08T10:30:00Z";
            default:
                var year = _random.Next(6) == 0 ? Pick([1, 2, 9998, 9999]) : _random.Next(1, 10000);
                var offset = _random.Next(4) switch
                {
                    0 => "Z",
                    1 => "",
                    _ => (_random.Next(2) == 0 ? "+" : "-") + _random.Next(0, 16).ToString("00", CultureInfo.InvariantCulture) + ":" + _random.Next(0, 60).ToString("00", CultureInfo.InvariantCulture),
                };
                return string.Create(CultureInfo.InvariantCulture, $"{year:0000}-{_random.Next(1, 13):00}-{_random.Next(1, 32):00}T{_random.Next(0, 25):00}:{_random.Next(0, 60):00}:{_random.Next(0, 61):00}{offset}");
        }
    }

    /// <summary>Random JSON of at most the given depth, with hostile leaves.</summary>
    public string RandomJson(int depth)
    {
        if (depth <= 0 || _random.Next(3) == 0)
        {
            return _random.Next(3) switch { 0 => HostileNumber(), 1 => HostileText(), _ => Pick(["null", "true", "false"]) };
        }

        var n = _random.Next(0, 5);
        if (_random.Next(2) == 0)
        {
            return "[" + string.Join(",", Enumerable.Range(0, n).Select(_ => RandomJson(depth - 1))) + "]";
        }

        return "{" + string.Join(",", Enumerable.Range(0, n).Select(i => Text(Pick(["event_id", "event_ts", "order", "items", "customer", "total", "qty", "_id", "timestamp", "attributes", "k" + i])) + ":" + RandomJson(depth - 1))) + "}";
    }

    /// <summary>Random bytes: sometimes pure noise, sometimes JSON-ish text with a few bytes flipped.</summary>
    public byte[] RandomBytes(string template)
    {
        if (_random.Next(2) == 0)
        {
            var bytes = new byte[_random.Next(0, 400)];
            _random.NextBytes(bytes);
            return bytes;
        }

        var text = Encoding.UTF8.GetBytes(template);
        for (var i = _random.Next(1, 6); i > 0 && text.Length > 0; i--) { text[_random.Next(text.Length)] = (byte)_random.Next(256); }
        return text;
    }

    public T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private string Digits(int count)
    {
        var sb = new StringBuilder(count);
        sb.Append((char)('1' + _random.Next(9)));
        for (var i = 1; i < count; i++) { sb.Append((char)('0' + _random.Next(10))); }
        return sb.ToString();
    }

    private string RandomText(int length)
    {
        var sb = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            var c = (char)_random.Next(0x20, 0x2FFF);
            if (c is '"' or '\\' || char.IsSurrogate(c)) { c = 'q'; }
            sb.Append(c);
        }

        return sb.ToString();
    }

    private static string Clip(string text) => text.Length <= 50 ? text : text[..50] + "...";
}
