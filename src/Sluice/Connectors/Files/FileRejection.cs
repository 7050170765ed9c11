using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sluice.Connectors.Files;

/// <summary>The content of <c>failed/&lt;name&gt;.error.json</c>: why the file failed and where (line, record, field).</summary>
public sealed record FileRejection(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("file_type")] string? FileType,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("line")] long? Line,
    [property: JsonPropertyName("record")] long? Record,
    [property: JsonPropertyName("field")] string? Field,
    [property: JsonPropertyName("error_count")] long ErrorCount,
    [property: JsonPropertyName("errors")] IReadOnlyList<FileRejection.Issue> Errors,
    [property: JsonPropertyName("content_sha256")] string ContentSha256,
    [property: JsonPropertyName("failed_at")] DateTimeOffset FailedAt)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public sealed record Issue(
        [property: JsonPropertyName("line")] long Line,
        [property: JsonPropertyName("record")] long Record,
        [property: JsonPropertyName("field")] string? Field,
        [property: JsonPropertyName("error")] string Error);

    public string ToJson() => JsonSerializer.Serialize(this, Indented);

    public static FileRejection? FromJson(string json) => JsonSerializer.Deserialize<FileRejection>(json);
}
