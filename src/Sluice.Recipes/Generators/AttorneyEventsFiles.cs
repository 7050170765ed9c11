namespace Sluice.Recipes.Generators;

/// <summary>Writes generated attorney events as NDJSON, one file per stream (<c>salesforce.ndjson</c>, <c>mongo.ndjson</c>), ready to POST or load.</summary>
public static class AttorneyEventsFiles
{
    public static IReadOnlyDictionary<string, long> Write(AttorneyEventsGenerator generator, string folder)
    {
        ArgumentNullException.ThrowIfNull(generator);
        Directory.CreateDirectory(folder);
        var streams = new Dictionary<string, (FileStream File, long Count)>(StringComparer.Ordinal);
        try
        {
            foreach (var e in generator.Events())
            {
                if (!streams.TryGetValue(e.Stream, out var s))
                {
                    s = (new FileStream(Path.Combine(folder, $"{e.Stream}.ndjson"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16), 0);
                }

                s.File.Write(e.Json);
                s.File.WriteByte((byte)'\n');
                streams[e.Stream] = (s.File, s.Count + 1);
            }
        }
        finally
        {
            foreach (var (_, s) in streams) { s.File.Dispose(); }
        }

        return streams.ToDictionary(s => s.Key, s => s.Value.Count, StringComparer.Ordinal);
    }
}
