namespace Sluice.IntegrationTests.Support;

internal static class Wait
{
    /// <summary>Waits for a condition that background work makes true, for 60 s at most (a loaded CI machine).</summary>
    public static async Task UntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            DateTime.UtcNow.ShouldBeLessThan(until, "the condition did not become true within 60 s");
            await Task.Delay(10);
        }
    }
}
