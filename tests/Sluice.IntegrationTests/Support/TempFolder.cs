namespace Sluice.IntegrationTests.Support;

/// <summary>A fresh folder under the system temp folder, deleted at the end of the test.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder(string label = "sluice-test")
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{label}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process under test may still be closing files; the OS temp cleaner gets the rest.
        }
    }
}
