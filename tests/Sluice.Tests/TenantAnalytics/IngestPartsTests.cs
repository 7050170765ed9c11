using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core.Config;
using Sluice.Serving.Observability;

namespace Sluice.Tests.TenantAnalytics;

public sealed class IngestPartsTests
{
    [Fact]
    public void A_json_body_splits_into_its_objects_and_a_broken_one_reports_line_and_byte()
    {
        var events = new List<EventSlice>();
        var body = Encoding.UTF8.GetBytes("[{\"a\":1},\n {\"b\":[1,2]} ]");
        RequestBody.SplitJson(body, events).ShouldBeNull();
        events.Select(e => Encoding.UTF8.GetString(body, e.Start, e.Length)).ShouldBe(["{\"a\":1}", "{\"b\":[1,2]}"]);
        events.Select(e => e.Index).ShouldBe([0, 1]);

        events.Clear();
        RequestBody.SplitJson("{\"a\":1}"u8, events).ShouldBeNull();
        events.Count.ShouldBe(1);

        var error = RequestBody.SplitJson(Encoding.UTF8.GetBytes("[{\"a\":1},\n{\"b\" 2}]"), []);
        error.ShouldNotBeNull();
        error.Line.ShouldBe(2);
        error.Byte.ShouldBe(6);
        RequestBody.SplitJson("{\"a\":1} {\"b\":2}"u8, [])!.Message.ShouldContain("NDJSON");
        RequestBody.SplitJson(""u8, [])!.Message.ShouldContain("empty");
        RequestBody.SplitJson([(byte)'"', 0xC3, (byte)'"'], [])!.Message.ShouldContain("not valid UTF-8");
    }

    [Fact]
    public void Ndjson_lines_keep_their_line_numbers_and_blank_lines_are_skipped()
    {
        var events = new List<EventSlice>();
        var body = Encoding.UTF8.GetBytes("\uFEFF{\"a\":1}\r\n\n   \n{\"b\":2}\n{\"c\"");
        RequestBody.SplitNdjson(body, events);
        events.Select(e => (e.Index, e.Line)).ShouldBe([(0, (int?)1), (1, 4), (2, 5)]);
        events.Select(e => Encoding.UTF8.GetString(body, e.Start, e.Length)).ShouldBe(["{\"a\":1}", "{\"b\":2}", "{\"c\""]);
    }

    [Theory]
    [InlineData("2025-11-08T10:30:00Z", 0)]
    [InlineData("2025-11-08T10:30:00.1Z", 1_000_000)]
    [InlineData("2025-11-08T10:30:00.123Z", 1_230_000)]
    [InlineData("2025-11-08T10:30:00.1234567Z", 1_234_567)]
    public void Iso_timestamps_in_the_common_shape_parse_without_the_general_parser(string text, long ticks)
    {
        IsoTimestamp.TryParseUtc(Encoding.ASCII.GetBytes(text), out var value).ShouldBeTrue();
        value.ShouldBe(new DateTime(2025, 11, 8, 10, 30, 0, DateTimeKind.Utc).AddTicks(ticks));
        value.Kind.ShouldBe(DateTimeKind.Utc);
    }

    [Theory]
    [InlineData("2025-11-08T10:30:00+02:00")]
    [InlineData("2025-02-30T10:30:00Z")]
    [InlineData("2025-11-08 10:30:00Z")]
    [InlineData("2025-11-08T25:30:00Z")]
    [InlineData("2025-11-08T10:30:00.12345678Z")]
    public void Other_shapes_are_left_to_the_general_parser(string text) =>
        IsoTimestamp.TryParseUtc(Encoding.ASCII.GetBytes(text), out _).ShouldBeFalse();

    [Theory]
    [InlineData("acme", "e-1")]
    [InlineData("ténant", "clé-ü")]
    [InlineData("t", "a key longer than the stack buffer ................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................")]
    public void Dedup_hashes_are_those_of_the_tenant_a_zero_byte_and_the_key_so_persisted_keys_still_match(string tenant, string key) =>
        DedupIndex.Hash(tenant, key).ShouldBe(System.IO.Hashing.XxHash3.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(tenant + "\0" + key)));

    [Fact]
    public void Dedup_keys_are_per_tenant_expire_with_the_window_and_are_bounded()
    {
        DedupIndex.Hash("a", "k").ShouldNotBe(DedupIndex.Hash("b", "k"));
        DedupIndex.Hash("a", "k").ShouldBe(DedupIndex.Hash("a", "k"));
        var index = new DedupIndex(Path.Combine(Path.GetTempPath(), "unused-" + Guid.NewGuid().ToString("N")), TimeSpan.FromMinutes(10), 1_000);
        index.Add(1, 0);
        index.Add(2, 5 * 60_000);
        index.Contains(1).ShouldBeTrue();
        index.Expire(11 * 60_000);
        index.Contains(1).ShouldBeFalse();
        index.Contains(2).ShouldBeTrue();
        for (ulong k = 10; k < 2_000; k++) { index.Add(k, (6 * 60_000) + (long)k * 100); }
        index.Count.ShouldBeLessThanOrEqualTo(1_000);
        index.Contains(1_999).ShouldBeTrue();
        index.Contains(2).ShouldBeFalse();
    }

    [Fact]
    public void Persisted_keys_are_kept_per_hour_through_a_bounded_buffer_and_read_back_after_a_restart()
    {
        var folder = Path.Combine(Path.GetTempPath(), "dedup-" + Guid.NewGuid().ToString("N"));
        try
        {
            const long hour = 3_600_000;
            var now = 1_700_000_000_000L - (1_700_000_000_000L % hour) + (30 * 60_000);
            // 20,000 keys (more than one buffer's worth) over two hours, one outside the window, one without a key.
            var keys = Enumerable.Range(1, 20_000).Select(i => ((ulong)i, now - (i <= 12_000 ? 60_000L : hour))).ToList();
            keys.Add((999_999UL, now - (3 * hour)));
            keys.Add((0UL, now));
            var index = new DedupIndex(folder, TimeSpan.FromHours(2), 1_000_000);
            index.Persist(keys, now);
            var files = Directory.GetFiles(folder, "*.keys").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            files.ShouldBe([$"{(now - hour) / hour}.keys", $"{now / hour}.keys"]);
            new FileInfo(Path.Combine(folder, $"{now / hour}.keys")).Length.ShouldBe(12_000 * 16);
            // A second segment of the same hour appends to its file.
            index.Persist([(30_000UL, now)], now);

            var reopened = new DedupIndex(folder, TimeSpan.FromHours(2), 1_000_000);
            reopened.Load(now);
            reopened.Count.ShouldBe(20_001);
            reopened.Contains(1).ShouldBeTrue();
            reopened.Contains(20_000).ShouldBeTrue();
            reopened.Contains(30_000).ShouldBeTrue();
            reopened.Contains(999_999).ShouldBeFalse("outside the window when persisted");
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void A_key_added_and_withdrawn_is_new_again_and_the_counts_per_second_stay_right()
    {
        var index = new DedupIndex(Path.Combine(Path.GetTempPath(), "unused-" + Guid.NewGuid().ToString("N")), TimeSpan.FromMinutes(10), 1_000);
        index.Add(5, 1_000).ShouldBeTrue();
        index.Add(5, 2_000).ShouldBeFalse("a duplicate");
        index.Add(0, 1_000).ShouldBeFalse("no key");
        index.Add(6, 1_500).ShouldBeTrue();
        index.Withdraw(5);
        index.Withdraw(5);
        index.Withdraw(99);
        index.Count.ShouldBe(1);
        index.Add(5, 3_000).ShouldBeTrue("its event never landed, so a retry is not a duplicate");
        // Expiry cuts by the counts per second: withdrawn and re-added keys must be counted where they now are.
        index.Expire(1_000 + 10 * 60_000 + 1_000);
        index.Contains(6).ShouldBeFalse();
        index.Contains(5).ShouldBeTrue();
        index.Expire(3_000 + 10 * 60_000 + 1_000);
        index.Count.ShouldBe(0);
    }

    [Fact]
    public void A_full_dedup_index_forgets_its_oldest_seconds_a_sixteenth_at_a_time()
    {
        const int max = 1_200_000;
        var index = new DedupIndex(Path.Combine(Path.GetTempPath(), "unused-" + Guid.NewGuid().ToString("N")), TimeSpan.FromDays(1), max);
        // 10,000 keys a second: past the bound, whole oldest seconds go, 75,000 keys or more at once.
        for (ulong k = 1; k <= max + 10_000; k++) { index.Add(k, 1_700_000_000_000L + ((long)k / 10_000 * 1000)); }
        index.Count.ShouldBeInRange(max - (max / 16) - 10_000, max);
        index.Contains(max + 10_000).ShouldBeTrue("the newest keys stay");
        index.Contains(1).ShouldBeFalse("the oldest second went first");
        index.Contains(max - 100_000).ShouldBeTrue();
        index.Add(max + 20_000, 1_700_000_000_000L + 200_000_000L);
        index.Contains(max + 20_000).ShouldBeTrue();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void The_dedup_key_table_finds_adds_and_removes_as_a_dictionary_does(int seed)
    {
        // Few distinct keys, as many removals as additions, growth from 16 slots: long runs, some wrapping around the end.
        var random = new Random(seed);
        var table = new KeyArrivals();
        var expected = new Dictionary<ulong, uint>();
        for (var op = 0; op < 200_000; op++)
        {
            var key = random.Next(4) == 0 ? (ulong)random.Next(1, 200) : (ulong)random.NextInt64(1, long.MaxValue) % 5_000 + 1;
            switch (random.Next(3))
            {
                case 0:
                    table.TryAdd(key, (uint)op).ShouldBe(expected.TryAdd(key, (uint)op));
                    break;
                case 1:
                    table.Remove(key).ShouldBe(expected.Remove(key));
                    break;
                default:
                    table.TryGetValue(key, out var second).ShouldBe(expected.TryGetValue(key, out var want));
                    second.ShouldBe(want);
                    break;
            }

            table.Count.ShouldBe(expected.Count);
        }

        expected.Keys.ShouldAllBe(k => table.ContainsKey(k));
        table.ContainsKey(0).ShouldBeFalse();
        var old = new List<ulong>();
        table.CollectBefore(100_000, old);
        old.Order().ShouldBe(expected.Where(e => e.Value < 100_000).Select(e => e.Key).Order());
    }

    [Theory]
    [InlineData("512", 512L)]
    [InlineData("64KB", 65_536L)]
    [InlineData("16MB", 16_777_216L)]
    [InlineData("2GB", 2_147_483_648L)]
    [InlineData("1.5MiB", 1_572_864L)]
    public void Sizes_read_with_binary_units(string text, long bytes)
    {
        Sizes.TryParse(text, out var value).ShouldBeTrue();
        value.ShouldBe(bytes);
    }

    [Fact]
    public void Sizes_refuse_nonsense() => Sizes.TryParse("lots", out _).ShouldBeFalse();
}
