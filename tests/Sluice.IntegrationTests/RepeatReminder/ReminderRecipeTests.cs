using Sluice.Recipes;
using Sluice.Core.Recipes;
using static Sluice.IntegrationTests.RepeatReminder.ReminderHarness;

namespace Sluice.IntegrationTests.RepeatReminder;

/// <summary>The recipe's configuration: validated with file, line and key; extended with a source by adding a mapping file.</summary>
public sealed class ReminderRecipeTests
{
    [Fact]
    public void Broken_settings_are_all_reported_with_file_line_and_key()
    {
        using var folder = new Support.TempFolder("sluice-reminder-broken");
        var recipe = CopyRecipe(folder.Path,
            r => r.Replace("subject: \"Repeat client: follow up on case {case_id} ({client_id})\"", "subject: \"Case {cas_id}\"", StringComparison.Ordinal)
                  .Replace("delay: P30D", "delay: thirty days", StringComparison.Ordinal)
                  .Replace("# recurrence: {every: P7D, times: 3}", "recurrence: {every: P7D}", StringComparison.Ordinal)
                  .Replace("json_column: _json             # each event as received, for the mapping", "json_column: _json\n      nonsense: 1", StringComparison.Ordinal),
            s => s.Replace("attorney_email: encrypt          # always: the reminder is mailed to it", "attorney_email: hash", StringComparison.Ordinal));
        File.AppendAllText(Path.Combine(recipe, "mappings", "mongo.yaml"), "  colour: paint\n");

        var (_, errors) = new RecipeLoader(RecipeComponents.Create()).TryLoad(recipe);

        var text = string.Join("\n", errors.All.Select(e => e.ToString()));
        text.ShouldContain("recipe.yaml:");
        text.ShouldContain("jobs.send-reminders.mail.subject: unknown placeholder '{cas_id}'");
        text.ShouldContain("jobs.send-reminders.rule.delay: expected a duration");
        text.ShouldContain("jobs.send-reminders.rule.recurrence.times: recurrence needs 'times'");
        text.ShouldContain("pipelines.salesforce.source.nonsense: unknown key");
        text.ShouldContain("store.yaml:");
        text.ShouldContain("privacy.attorney_email: must be encrypt");
        text.ShouldContain("mappings/mongo.yaml:");
        text.ShouldContain("fields.colour: not a field of the attorney_event model");
        errors.All.ShouldAllBe(e => e.Line > 0);
    }

    [Fact]
    public async Task A_third_source_is_a_mapping_file_and_a_line_of_the_rule()
    {
        using var h = new ReminderHarness(r => r.Replace("closure: {sources: [mongo], event_type: service_closure}", "closure: {sources: [mongo, zendesk], event_type: service_closure}", StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(h.RecipeFolder, "mappings", "zendesk.yaml"), """
            # A help desk: tickets nest what the others keep flat, and name things their own way.
            name: zendesk
            fields:
              source: {value: zendesk}
              source_id: ticket.id
              event_type: {from: ticket.kind, lower: true}
              occurred_at: {from: ticket.closed_at_ms, numbers: epoch_millis}
              case_id: ticket.external_case
              client_id: requester.organisation
              attorney_email: assignee.email
              case_type: {from: ticket.category, default: General}
            """);
        var closedMs = T0.ToUnixTimeMilliseconds();
        var batch = await h.LandAsync("zendesk", $$"""{"ticket": {"id": 4711, "Kind": "SERVICE_CLOSURE", "closed_at_ms": {{closedMs}}, "External_Case": "{{h.Case("Z")}}"}, "requester": {"organisation": "{{h.Client()}}"}, "assignee": {"email": "{{h.Attorney("zed")}}"} }""");
        await h.LandAsync("salesforce", h.Salesforce("Z", T0.AddDays(1), attorney: "zed"));

        batch.Rejected.ShouldBeEmpty();
        var outcome = await h.EvaluateAsync(T0 + TimeSpan.FromDays(30));

        outcome.RowsOut.ShouldBe(1, outcome.Message);
        h.Mails("zed").Single().Subject!.ShouldContain(h.Case("Z"));
        h.Engine.Count("SELECT count(*) FROM reminders.attorney_events WHERE source = 'zendesk' AND source_id = '4711' AND case_type = 'General'").ShouldBe(1);
    }
}
