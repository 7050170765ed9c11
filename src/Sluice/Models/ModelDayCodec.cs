using System.Text.Json;

namespace Sluice.Models;

/// <summary>The per-model records of a day (<see cref="DayRecord.Models"/>) as the text both engines store in <c>model_days.models</c>.</summary>
internal static class ModelDayCodec
{
    public static string? Write(IReadOnlyDictionary<string, ModelDayRecord> models) =>
        models.Count == 0 ? null : JsonSerializer.Serialize(models.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => new[] { kv.Value.Input, kv.Value.Output }));

    public static IReadOnlyDictionary<string, ModelDayRecord> Read(string? text)
    {
        if (string.IsNullOrEmpty(text)) { return new Dictionary<string, ModelDayRecord>(StringComparer.Ordinal); }
        var raw = JsonSerializer.Deserialize<Dictionary<string, string[]>>(text) ?? [];
        return raw.Where(kv => kv.Value.Length == 2).ToDictionary(kv => kv.Key, kv => new ModelDayRecord(kv.Value[0], kv.Value[1]), StringComparer.Ordinal);
    }
}
