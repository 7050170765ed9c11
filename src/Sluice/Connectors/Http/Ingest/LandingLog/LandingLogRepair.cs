using System.Globalization;
using Sluice.Core;
using Sluice.Core.IO;

namespace Sluice.Connectors.Http.Ingest;

/// <summary>Bytes <c>sluice landing repair</c> gave up: unreadable (or missing) bytes of a segment, replaced by padding or cut.</summary>
/// <param name="Bytes">What the file held there (empty where bytes were missing).</param>
/// <param name="Kept">Where the segment as it was before the repair is kept (null when nothing in the file changed).</param>
public sealed record DroppedBytes(string Segment, long From, long To, byte[] Bytes, string? Kept);

/// <summary>
/// The operator's way out of a damaged landing log, run with the log closed to everyone else. Every record that reads
/// back whole keeps its offset; each unreadable or missing range between them becomes padding records of exactly its
/// length (so the sinks' positions still mean what they meant), and the log reaches at least every position a sink
/// committed (new events then get offsets no sink has seen). A torn tail no sink committed is cut. Before a segment file
/// changes, it is copied to <c>damaged/</c>; every range given up is returned, for the dead-letter store.
/// </summary>
public static class LandingLogRepair
{
    public const string KeptFolder = "damaged";

    public static List<DroppedBytes> Run(string folder, IReadOnlyList<long> starts, Func<long, string> pathOf, long? cleanEnd, long? highest, long? lowest, TimeProvider time)
    {
        var dropped = new List<DroppedBytes>();
        var stamp = time.GetUtcNow().ToString("yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture);
        if (lowest is { } low && starts.Count > 0 && low < starts[0])
        {
            // Segments a sink still needed are gone: padding from its position up to the oldest left.
            var path = pathOf(low);
            using (File.Create(path)) { }
            Pad(path, 0, starts[0] - low);
            dropped.Add(new DroppedBytes(Path.GetFileName(path), low, starts[0], [], null));
        }

        for (var i = 0; i < starts.Count; i++)
        {
            var path = pathOf(starts[i]);
            var start = starts[i];
            var fileEnd = start + new FileInfo(path).Length;
            var regions = Unreadable(path, start);
            long? cutAt = null;
            if (i + 1 < starts.Count)
            {
                var next = starts[i + 1];
                if (fileEnd > next)
                {
                    throw new SluiceException($"landing log '{folder}': segment {Path.GetFileName(path)} runs {fileEnd - next} bytes into the next one; this repair cannot tell which bytes are right: restore the segments from a backup.");
                }

                Extend(regions, fileEnd, next);
            }
            else
            {
                var target = Math.Max(cleanEnd ?? 0, highest ?? 0);
                if (regions.Count > 0 && regions[^1].To == fileEnd && target <= regions[^1].From)
                {
                    // A torn tail no sink committed and no clean stop vouched for: cut, as at an unclean start.
                    cutAt = regions[^1].From;
                }

                Extend(regions, fileEnd, target);
            }

            if (regions.Count == 0 && cutAt is null)
            {
                continue;
            }

            var kept = Keep(folder, path, stamp);
            var original = File.ReadAllBytes(kept);
            foreach (var (from, to) in regions)
            {
                if (cutAt == from) { continue; }
                if (to - from < LandingRecord.HeaderSize)
                {
                    throw new SluiceException($"landing log '{folder}': {to - from} unreadable bytes at offset {from} of segment {Path.GetFileName(path)} are too few to pad; restore the segment from a backup (the copy in {KeptFolder}/ is the damaged one).");
                }
            }

            foreach (var (from, to) in regions)
            {
                var bytes = original.AsSpan((int)Math.Min(from - start, original.Length), (int)(Math.Min(to, fileEnd) - Math.Min(from, fileEnd))).ToArray();
                dropped.Add(new DroppedBytes(Path.GetFileName(path), from, to, bytes, Path.Combine(KeptFolder, Path.GetFileName(kept))));
                if (cutAt != from) { Pad(path, from - start, to - from); }
            }

            if (cutAt is { } cut)
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
                stream.SetLength(cut - start);
                stream.Flush(flushToDisk: true);
            }
        }

        FileSync.Directory(folder);
        return dropped;
    }

    /// <summary>The ranges of a segment file that are not whole records: from a bad record to the next whole one (or the file's end).</summary>
    private static List<(long From, long To)> Unreadable(string path, long start)
    {
        var regions = new List<(long From, long To)>();
        var data = File.ReadAllBytes(path);
        var at = 0L;
        while (at < data.Length)
        {
            if (LandingRecord.TryRead(data.AsSpan((int)at), out var size) == ReadStatus.Ok)
            {
                at += size;
                continue;
            }

            var next = SegmentScanner.NextIntactRecord(path, at + 1, data.Length) ?? data.Length;
            regions.Add((start + at, start + next));
            at = next;
        }

        return regions;
    }

    /// <summary>Bytes missing up to <paramref name="to"/> join the unreadable range that ends at the file's end, or become one.</summary>
    private static void Extend(List<(long From, long To)> regions, long fileEnd, long to)
    {
        if (to <= fileEnd) { return; }
        if (regions.Count > 0 && regions[^1].To == fileEnd)
        {
            regions[^1] = (regions[^1].From, to);
            return;
        }

        regions.Add((fileEnd, to));
    }

    private static string Keep(string folder, string path, string stamp)
    {
        var kept = Path.Combine(folder, KeptFolder, $"{Path.GetFileName(path)}.{stamp}");
        Directory.CreateDirectory(Path.GetDirectoryName(kept)!);
        File.Copy(path, kept, overwrite: false);
        using (var stream = new FileStream(kept, FileMode.Open, FileAccess.ReadWrite)) { stream.Flush(flushToDisk: true); }
        FileSync.Directory(Path.GetDirectoryName(kept)!);
        return kept;
    }

    /// <summary>Padding records filling <paramref name="length"/> bytes at <paramref name="at"/> of the file (extending it if needed), fsynced.</summary>
    private static void Pad(string path, long at, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        while (length > 0)
        {
            // Pieces of at most the largest record, none shorter than a header.
            var piece = (int)Math.Min(length, LandingRecord.MaxRecordBytes);
            if (length - piece is > 0 and < LandingRecord.HeaderSize) { piece -= LandingRecord.HeaderSize; }
            var padding = new byte[piece];
            LandingRecord.WritePadding(padding);
            RandomAccess.Write(stream.SafeFileHandle, padding, at);
            at += piece;
            length -= piece;
        }

        stream.Flush(flushToDisk: true);
    }
}
