namespace Sluice.IntegrationTests.Support;

internal static class Wait
{
    /// <summary>Waits for a condition that background work makes true, for 30 s at most.</summary>
    public static async Task UntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            DateTime.UtcNow.ShouldBeLessThan(until, "the condition did not become true within 30 s");
            await Task.Delay(10);
        }
    }
}
