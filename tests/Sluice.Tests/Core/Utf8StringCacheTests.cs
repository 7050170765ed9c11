using System.Text;
using Sluice.Core.Text;

namespace Sluice.Tests.Core;

public sealed class Utf8StringCacheTests
{
    [Fact]
    public void A_repeated_value_comes_back_as_the_same_string_and_others_decode_correctly()
    {
        var cache = new Utf8StringCache();
        var first = cache.Get("SKU-1"u8);
        cache.Get("SKU-1"u8).ShouldBeSameAs(first);
        cache.Get("SKU-2"u8).ShouldBe("SKU-2");
        cache.Get("grüße"u8).ShouldBe("grüße");
        cache.Get(Encoding.ASCII.GetBytes(new string('x', Utf8StringCache.MaxBytes + 1))).Length.ShouldBe(Utf8StringCache.MaxBytes + 1);
    }

    [Fact]
    public void Values_that_never_repeat_stop_being_cached_and_caching_resumes_later()
    {
        var cache = new Utf8StringCache();
        for (var i = 0; i < Utf8StringCache.Probe; i++) { cache.Get(Encoding.ASCII.GetBytes($"id-{i}")); }

        // Resting: equal values decode to equal, but not the same, strings.
        var a = cache.Get("repeat"u8);
        cache.Get("repeat"u8).ShouldBe(a);
        cache.Get("repeat"u8).ShouldNotBeSameAs(a);

        for (var i = 0; i < Utf8StringCache.Rest; i++) { cache.Get("rest"u8); }
        var b = cache.Get("again"u8);
        cache.Get("again"u8).ShouldBeSameAs(b, "after the rest the cache is tried again");
    }
}
