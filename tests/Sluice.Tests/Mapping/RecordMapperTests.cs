using System.Text;
using Sluice.Core.Config;
using Sluice.Core.Schema;
using Sluice.Mapping;
using Sluice.Recipes.Reminders;

namespace Sluice.Tests.Mapping;

public sealed class RecordMapperTests
{
    internal const string Salesforce = """
        name: salesforce
        fields:
          source: {value: salesforce}
          source_id: salesforce_object_id
          event_type: event_type
          occurred_at: timestamp
          case_id: case_id
          client_id: client_id
          attorney_email: attorney_email
          status: attributes.status
          confidence_score: attributes.confidence_score
          case_type: attributes.case_type
          last_action: attributes.case_last_action
        """;

    private const string Mongo = """
        name: mongo
        fields:
          source: {value: mongo}
          source_id: _id
          event_type: {from: type, lower: true}
          occurred_at: event_timestamp
          case_id: case_id
          client_id: client_id
          attorney_email: attorney_email
          status: status
          confidence_score: confidence_score
          case_type: case_type
          last_action: case_last_action
        """;

    private const string SalesforceEvent = """
        {"source": "salesforce", "salesforce_object_id": "00Q2M00000XYZ", "event_type": "attorney actions",
         "timestamp": "2025-07-21T10:34:00Z", "case_id": "CASE-998221", "client_id": "CLIENT-202311",
         "attorney_email": "sample_email@gmail.com",
         "attributes": {"status": "Likely to Repeat", "confidence_score": 0.82, "case_type": "Immigration", "Case_last_action": "Sample action text"}}
        """;

    private const string MongoEvent = """
        {"source": "Mongo", "_id": "64b7f0c2", "type": "Service_Closure", "event_timestamp": "2025-07-21T12:34:00+02:00",
         "case_id": "CASE-998221", "client_id": "CLIENT-202311", "attorney_email": "sample_email@gmail.com",
         "status": "closed", "confidence_score": "0.82", "case_type": "case - type test", "case_last_action": "Sample action text"}
        """;

    [Fact]
    public void Both_shapes_become_the_same_model_renamed_unnested_cast_and_case_insensitive()
    {
        var sf = Row(Salesforce, SalesforceEvent);
        var mongo = Row(Mongo, MongoEvent);

        sf["source"].ShouldBe("salesforce");
        sf["source_id"].ShouldBe("00Q2M00000XYZ");
        sf["occurred_at"].ShouldBe(new DateTime(2025, 7, 21, 10, 34, 0, DateTimeKind.Utc));
        sf["status"].ShouldBe("Likely to Repeat");
        sf["confidence_score"].ShouldBe(0.82);
        sf["last_action"].ShouldBe("Sample action text", "Case_last_action matches case_last_action");

        mongo["source"].ShouldBe("mongo");
        mongo["event_type"].ShouldBe("service_closure", "lower: true");
        mongo["occurred_at"].ShouldBe(new DateTime(2025, 7, 21, 10, 34, 0, DateTimeKind.Utc), "the offset is applied");
        mongo["confidence_score"].ShouldBe(0.82, "numeric text is cast to the model's double");
        foreach (var field in new[] { "case_id", "client_id", "attorney_email", "last_action" })
        {
            mongo[field].ShouldBe(sf[field], field);
        }
    }

    [Fact]
    public void Defaults_fill_missing_values_and_first_present_path_wins()
    {
        var mapping = """
            fields:
              source: {value: third}
              source_id: {from: [ticket.id, id]}
              event_type: {from: kind, default: note}
              occurred_at: {from: at, numbers: epoch_millis}
              case_id: case
              client_id: client
              attorney_email: owner.email
              confidence_score: {from: score, default: 0.5}
            """;
        var row = Row(mapping, """{"id": "T-1", "at": 1753094040000, "case": "C", "client": 42, "OWNER": {"Email": "a@b.c"}, "kind": null, "extra": [1, {"x": 2}]}""");

        row["source_id"].ShouldBe("T-1");
        row["event_type"].ShouldBe("note", "null is a missing value, so the default applies");
        row["occurred_at"].ShouldBe(new DateTime(2025, 7, 21, 10, 34, 0, DateTimeKind.Utc));
        row["client_id"].ShouldBe("42", "a number becomes text for a text field");
        row["attorney_email"].ShouldBe("a@b.c");
        row["confidence_score"].ShouldBe(0.5);
        row["status"].ShouldBeNull();
    }

    [Theory]
    [InlineData("""{"salesforce_object_id": "x", "event_type": "e", "timestamp": "2025-07-21T10:34:00Z", "case_id": "c", "client_id": "k"}""", "attorney_email", "missing required field 'attorney_email'")]
    [InlineData("""{"salesforce_object_id": "x", "event_type": "e", "timestamp": "2025-07-21T10:34:00Z", "case_id": "c", "client_id": "k", "attorney_email": "   "}""", "attorney_email", "missing required field 'attorney_email'")]
    [InlineData("""{"salesforce_object_id": "x", "event_type": "e", "timestamp": "yesterday", "case_id": "c", "client_id": "k", "attorney_email": "a@b.c"}""", "timestamp", "expected an ISO-8601 timestamp")]
    [InlineData("""{"salesforce_object_id": "x", "event_type": "e", "timestamp": "2025-07-21T10:34:00Z", "case_id": "c", "client_id": "k", "attorney_email": "a@b.c", "attributes": {"confidence_score": "high"}}""", "attributes.confidence_score", "expected a number, got the text 'high'")]
    [InlineData("""{"salesforce_object_id": "x", "event_type": "e", "timestamp": "2025-07-21T10:34:00Z", "case_id": {"id": 1}, "client_id": "k", "attorney_email": "a@b.c"}""", "case_id", "got an object")]
    [InlineData("""{"salesforce_object_id": "x", "timestamp": "2025-07""", null, "not valid JSON")]
    [InlineData("""[1, 2]""", null, "not a JSON object")]
    public void A_bad_record_writes_nothing_and_names_the_field_and_why(string json, string? field, string message)
    {
        var mapper = Mapper(Salesforce);
        var builder = new ColumnBatchBuilder(AttorneyEventModel.Schema);

        var issue = mapper.Map(Encoding.UTF8.GetBytes(json), builder);

        issue.ShouldNotBeNull();
        issue.Value.Field.ShouldBe(field);
        issue.Value.Message.ShouldContain(message);
        builder.Count.ShouldBe(0);
        mapper.Map(Encoding.UTF8.GetBytes(SalesforceEvent), builder).ShouldBeNull("the mapper is reusable after a bad record");
        builder.Flush().Strings(AttorneyEventModel.CaseId).ShouldBe(["CASE-998221"]);
    }

    [Fact]
    public void Mapping_files_are_validated_against_the_model_with_lines()
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse("""
            fields:
              source: {value: x}
              source_id: id
              nonsense: foo
              occurred_at: {from: at, default: not-a-time}
              confidence_score: {from: s, lower: true}
              case_id: {default: 1}
              attorney_email: {from: a, required: false}
            """, "m.yaml", errors)!;

        RecordMapping.Parse(map, AttorneyEventModel.Schema, "m");

        var text = string.Join("\n", errors.All.Select(e => e.ToString()));
        text.ShouldContain("m.yaml:4: fields.nonsense: not a field of the attorney_event model");
        text.ShouldContain("m.yaml:5: fields.occurred_at.default: 'not-a-time' is not a timestamp");
        text.ShouldContain("m.yaml:6: fields.confidence_score.lower: only for text fields");
        text.ShouldContain("fields.case_id.from: give 'from'");
        text.ShouldContain("fields.attorney_email.required: the model requires 'attorney_email'");
        text.ShouldContain("the attorney_event model requires 'event_type'");
        text.ShouldContain("the attorney_event model requires 'client_id'");
    }

    internal static RecordMapper Mapper(string yaml)
    {
        var errors = new ConfigErrors();
        var mapping = RecordMapping.Parse(ConfigMap.Parse(yaml, "test.yaml", errors)!, AttorneyEventModel.Schema, "test");
        errors.ThrowIfAny();
        return new RecordMapper(mapping);
    }

    private static Dictionary<string, object?> Row(string mappingYaml, string json)
    {
        var builder = new ColumnBatchBuilder(AttorneyEventModel.Schema);
        var issue = Mapper(mappingYaml).Map(Encoding.UTF8.GetBytes(json), builder);
        issue.ShouldBeNull(issue?.ToString());
        var batch = builder.Flush();
        return AttorneyEventModel.Schema.Fields.Select((f, i) => (f.Name, batch.Value(i, 0))).ToDictionary(p => p.Name, p => p.Item2);
    }
}
