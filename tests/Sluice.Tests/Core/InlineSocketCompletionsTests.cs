using Sluice.Core.IO;

namespace Sluice.Tests.Core;

/// <summary>
/// Which socket completions a Sluice process chooses (docs/ARCHITECTURE.md, "Socket completions run inline"): inline
/// unless in cluster mode, the user's value kept, and a child Sluice choosing again for its own command.
/// </summary>
public sealed class InlineSocketCompletionsTests
{
    [Theory]
    [InlineData(false, null, null, "1")]      // nothing set: inline
    [InlineData(true, null, null, "0")]       // cluster mode: the pool hop (its metadata store is synchronous Npgsql)
    [InlineData(false, "0", null, null)]      // the user's 0 is kept
    [InlineData(true, "1", null, null)]       // and the user's 1, in cluster mode too
    [InlineData(true, "1", "1", "0")]         // a worker started by a sluice that chose 1 chooses for itself
    [InlineData(false, "0", "1", "1")]
    public void Decides_from_the_mode_and_keeps_what_the_user_set(bool cluster, string? current, string? chosenBySluice, string? expected) =>
        InlineSocketCompletions.Decide(cluster, current, chosenBySluice).ShouldBe(expected);
}
