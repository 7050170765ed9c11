using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary>The data folder holds token hashes and keys: it and the files holding them are the owner's only.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DataFolderPermissionTests
{
    private const UnixFileMode OwnerFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerFolder = OwnerFile | UnixFileMode.UserExecute;

    [Fact]
    public async Task Tokens_create_makes_the_data_folder_0700_and_meta_db_0600()
    {
        using var temp = new TempFolder();
        var data = temp.Sub("fresh-data");
        using var run = SluiceProcess.StartIn(temp.Path, data, null, "tokens", "create", "--tenant", "acme", "--role", "reader");
        (await run.WaitAsync(TimeSpan.FromMinutes(1))).ShouldBe(0, run.Stderr);

        File.GetUnixFileMode(data).ShouldBe(OwnerFolder);
        var meta = Path.Combine(data, "meta.db");
        File.GetUnixFileMode(meta).ShouldBe(OwnerFile);
        foreach (var companion in new[] { meta + "-wal", meta + "-shm" }.Where(File.Exists))
        {
            File.GetUnixFileMode(companion).ShouldBe(OwnerFile, companion);
        }
    }
}
