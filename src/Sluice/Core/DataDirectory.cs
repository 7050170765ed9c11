namespace Sluice.Core;

/// <summary>
/// Every piece of state of one Sluice installation lives below one folder (<c>--data</c>, <c>SLUICE_DATA</c>,
/// default <c>./sluice-data</c>), so a run can be moved, inspected or thrown away as a unit.
/// </summary>
public sealed class DataDirectory
{
    public DataDirectory(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    public string MetadataPath => Path.Combine(Root, "meta.db");

    public string LakeRoot => Path.Combine(Root, "lake");

    public string StagingRoot => Path.Combine(LakeRoot, "_staging");

    public string LocksRoot => Path.Combine(Root, "locks");

    public string ControlSocketPath => Path.Combine(Root, "sluice.sock");

    public string RecipeFolder(string recipe) => Path.Combine(Root, recipe);

    public static string ResolveRoot(string? option) =>
        option ?? Environment.GetEnvironmentVariable("SLUICE_DATA") ?? "./sluice-data";

    public void EnsureCreated()
    {
        // It holds meta.db (token hashes, dead letters with their payloads) and key files: the owner's only.
        IO.PrivateFiles.CreateFolder(Root);
        Directory.CreateDirectory(LakeRoot);
        Directory.CreateDirectory(StagingRoot);
        Directory.CreateDirectory(LocksRoot);
    }
}
