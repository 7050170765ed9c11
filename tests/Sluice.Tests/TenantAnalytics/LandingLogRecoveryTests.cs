using Sluice.Connectors.Http.Ingest;

namespace Sluice.Tests.TenantAnalytics;

/// <summary>
/// The landing log's decision at start (clean or unclean stop x where the bad bytes are): only a tail of the newest
/// segment after an unclean stop is cut; everything else is damage with segment and offset, and nothing is cut.
/// </summary>
public sealed class LandingLogRecoveryTests
{
    private const string Folder = "/data/landing/s";

    private static SegmentScan Whole(long start, long length) => new(Name(start), start, length, length, SegmentFault.None, false);

    private static SegmentScan Bad(long start, long length, long valid, SegmentFault fault = SegmentFault.Checksum, bool intactAfter = false) =>
        new(Name(start), start, length, valid, fault, intactAfter);

    private static string Name(long start) => start.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".seg";

    [Fact]
    public void Unclean_stop_with_a_torn_tail_of_the_newest_segment_cuts_it()
    {
        var r = LandingLogRecovery.Decide(Folder, [Whole(0, 1000), Bad(1000, 700, 600, SegmentFault.Truncated)], cleanEnd: null);
        r.Damage.ShouldBeNull();
        r.Cut.ShouldBe(new TornTail(Name(1000), 1600, 100));
        r.End.ShouldBe(1600);
    }

    [Fact]
    public void Unclean_stop_with_bad_bytes_followed_by_whole_records_in_the_newest_segment_is_damage()
    {
        var r = LandingLogRecovery.Decide(Folder, [Whole(0, 1000), Bad(1000, 700, 300, intactAfter: true)], cleanEnd: null);
        r.Cut.ShouldBeNull();
        r.Damage.ShouldNotBeNull();
        r.Damage.Segment.ShouldBe(Name(1000));
        r.Damage.Offset.ShouldBe(1300);
        r.Damage.What.ShouldContain("not a torn tail");
        r.End.ShouldBe(1300, "readers stop at the damage");
    }

    [Fact]
    public void Unclean_stop_with_bad_bytes_in_an_older_segment_is_damage()
    {
        var r = LandingLogRecovery.Decide(Folder, [Bad(0, 1000, 400), Whole(1000, 700)], cleanEnd: null);
        r.Cut.ShouldBeNull();
        r.Damage!.Segment.ShouldBe(Name(0));
        r.Damage.Offset.ShouldBe(400);
        r.Damage.Message.ShouldContain("sluice landing repair");
    }

    [Fact]
    public void Clean_stop_with_a_tail_cut_from_the_newest_segment_is_damage_not_a_torn_tail()
    {
        var r = LandingLogRecovery.Decide(Folder, [Whole(0, 1000), Bad(1000, 680, 600, SegmentFault.Truncated)], cleanEnd: 1700);
        r.Cut.ShouldBeNull();
        r.Damage!.Segment.ShouldBe(Name(1000));
        r.Damage.Offset.ShouldBe(1600);
        r.Damage.What.ShouldContain("clean stop");
    }

    [Fact]
    public void Clean_stop_with_bad_bytes_in_the_middle_of_the_newest_segment_is_damage()
    {
        var r = LandingLogRecovery.Decide(Folder, [Bad(0, 700, 200, intactAfter: true)], cleanEnd: 700);
        r.Damage!.Offset.ShouldBe(200);
        r.Cut.ShouldBeNull();
    }

    [Fact]
    public void Clean_stop_with_bad_bytes_in_an_older_segment_is_damage()
    {
        var r = LandingLogRecovery.Decide(Folder, [Bad(0, 1000, 150), Whole(1000, 700)], cleanEnd: 1700);
        r.Damage!.Segment.ShouldBe(Name(0));
        r.Damage.Offset.ShouldBe(150);
    }

    [Fact]
    public void Clean_stop_with_whole_records_cut_from_the_end_is_damage()
    {
        // Cut exactly at a record boundary: every checksum is good, only the marker knows.
        var r = LandingLogRecovery.Decide(Folder, [Whole(0, 600)], cleanEnd: 750);
        r.Damage!.Offset.ShouldBe(600);
        r.Damage.What.ShouldContain("150 acknowledged bytes are missing");
    }

    [Fact]
    public void Clean_stop_with_everything_whole_and_the_recorded_end_is_clean()
    {
        var r = LandingLogRecovery.Decide(Folder, [Whole(0, 1000), Whole(1000, 700)], cleanEnd: 1700);
        r.ShouldBe(new LandingLogRecovery(1700, null, null));
    }

    [Fact]
    public void A_truncated_older_segment_is_a_gap_before_the_next_and_damage_after_any_stop()
    {
        foreach (var clean in new long?[] { null, 1700 })
        {
            var r = LandingLogRecovery.Decide(Folder, [Whole(0, 900), Whole(1000, 700)], clean);
            r.Damage!.Segment.ShouldBe(Name(0));
            r.Damage.Offset.ShouldBe(900);
            r.Damage.What.ShouldContain("100 bytes are missing");
        }
    }

    [Fact]
    public void A_sink_committed_past_the_end_or_before_the_oldest_segment_is_damage()
    {
        var segments = new List<(string, long)> { (Name(0), 0), (Name(1000), 1000) };
        LandingLogRecovery.CheckCommitted(Folder, segments, 1600, [("lake", 1600), ("postgres", 1200)]).ShouldBeNull();
        var past = LandingLogRecovery.CheckCommitted(Folder, segments, 1600, [("lake", 1750), ("postgres", 1200)]);
        past!.Offset.ShouldBe(1600);
        past.Segment.ShouldBe(Name(1000));
        past.What.ShouldContain("sink lake committed up to offset 1750");
        var before = LandingLogRecovery.CheckCommitted(Folder, [(Name(1000), 1000)], 1600, [("lake", 1600), ("postgres", 400)]);
        before!.What.ShouldContain("sink postgres has committed up to offset 400");
    }
}
