namespace Sluice.Core.Metadata;

/// <summary>
/// A data folder that holds data (Parquet files, landing logs, processed drops) but no metadata store. Starting with a
/// fresh store there would treat the whole lake as orphans and every input as new, so every command refuses instead.
/// </summary>
public sealed class MetadataMissingException : SluiceException
{
    public MetadataMissingException(DataDirectory data, string evidence)
        : base($"the metadata store {data?.MetadataPath} is missing, but {evidence}: a fresh store would not know that data " +
               $"(its lake files would look unknown, its inputs new); restore meta.db from a backup, or rebuild the lake manifest " +
               $"with `sluice recover --data {data?.Root}`")
    {
    }

    public MetadataMissingException() { }

    public MetadataMissingException(string message) : base(message) { }

    public MetadataMissingException(string message, Exception inner) : base(message, inner) { }
}
