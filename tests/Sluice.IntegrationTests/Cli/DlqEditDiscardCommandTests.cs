using System.Globalization;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Cli;

/// <summary><c>sluice dlq edit</c> and <c>dlq discard</c>: the same store operations as the console's routes.</summary>
public sealed class DlqEditDiscardCommandTests
{
    [Fact]
    public async Task Edit_keeps_the_old_payload_in_the_history_and_discard_keeps_the_letter_with_its_reason()
    {
        using var engine = new Engine();
        engine.Services.DeadLetters.Add("files:vehicle-files/fleet_events", "fleet_1.json: line 3, record 2, field 'event_type'", "missing required field", """{"vehicle_id": "V2"}""");
        var id = engine.Services.DeadLetters.List().Single().Id.ToString(CultureInfo.InvariantCulture);

        var edit = await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "edit", id, "--raw", """{"vehicle_id": "V2", "event_type": "stop"}""", "--note", "type was missing");
        edit.Code.ShouldBe(0, edit.Err);
        edit.Out.ShouldBe($"{id}: payload changed (1 edit(s)); replay it with: sluice dlq replay {id}\n");
        var show = await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "show", id);
        show.Out.ShouldContain("""{"vehicle_id": "V2", "event_type": "stop"}""");
        show.Out.ShouldContain("(sluice dlq edit): type was missing; before:\n{\"vehicle_id\": \"V2\"}");

        var unknown = await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "edit", "999", "--raw", "{}");
        unknown.Code.ShouldBe(1);
        unknown.Err.ShouldContain("no dead letter with id 999");
        (await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "discard", id)).Code.ShouldBe(1, "a discard needs its reason");

        var discard = await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "discard", id, "--reason", "a test vehicle");
        discard.Code.ShouldBe(0, discard.Err);
        discard.Out.ShouldBe("1 discarded\n");
        (await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "show", id)).Out.ShouldContain("status:   discarded: a test vehicle");
        (await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "list", "--status", "discarded", "--format", "csv")).Out.ShouldContain($"{id},");
        (await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "list", "--format", "csv")).Out.ShouldBe("id,created_utc,source,status,position,reason\n", "no pending letter is left");

        var late = await SluiceProcess.RunAsync(engine.DataRoot, "dlq", "edit", id, "--raw", "{}");
        late.Code.ShouldBe(1);
        late.Err.ShouldContain($"letter {id} is discarded: only a pending letter can be edited");
    }
}
