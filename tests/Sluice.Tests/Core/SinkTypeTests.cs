using Sluice.Connectors.ClickHouse;
using Sluice.Connectors.Redis;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;

namespace Sluice.Tests.Core;

/// <summary>A sink type is its name, its options and its constructor: <see cref="SinkType{TOptions}"/> makes the factory, and the change-stream contract only for a sink that declares one.</summary>
public sealed class SinkTypeTests
{
    [Fact]
    public void The_factory_keeps_the_parsed_options_and_makes_the_sink_with_the_recipes_name()
    {
        var (map, context, errors) = Parse("sink:\n  label: audit\n");
        var factory = new EchoSinkType().Parse(map, context);

        errors.All.ShouldBeEmpty();
        factory.ShouldBeOfType<SinkFactory<string>>().Options.ShouldBe("audit");
        factory.ShouldNotBeAssignableTo<IChangeStreamSink>();
        factory.Create(null!).Name.ShouldBe("orders/audit");
    }

    [Fact]
    public void A_sink_that_declares_a_change_stream_is_seen_by_the_loader_as_one()
    {
        var (map, context, errors) = Parse("sink:\n  name: facts\n  table: items\n  mode: mirror\n");
        var factory = new ClickHouseSinkType().Parse(map, context);

        errors.All.ShouldBeEmpty();
        var changes = factory.ShouldBeAssignableTo<IChangeStreamSink>()!;
        changes.SinkName.ShouldBe("facts");
        changes.ChangeStreamOption.ShouldBe("mode: mirror");
        changes.NeedsSourceKey("items").ShouldBeTrue();
        changes.NeedsSourceKey("other").ShouldBeFalse();
        factory.ShouldBeAssignableTo<SinkFactory<ClickHouseOptions>>()!.Options.Mirror.ShouldBeTrue();
    }

    [Fact]
    public void A_lake_mirror_keeps_every_table_by_key_those_given_their_own_keys_too()
    {
        // Each such table is one partition of a cluster's change stream (its truncate with the rows around it, a key
        // change's old row before its insert): keyed by the source or by keys:, alike.
        var (map, context, errors) = Parse("sink:\n  zone: m\n  mode: mirror\n  keys: { items: [id] }\n");
        var changes = new Sluice.Connectors.Lake.LakeSinkType().Parse(map, context).ShouldBeAssignableTo<IChangeStreamSink>()!;

        errors.All.ShouldBeEmpty();
        changes.ChangeStreamOption.ShouldBe("mode: mirror");
        changes.NeedsSourceKey("items").ShouldBeFalse();
        changes.KeepsByKey("items").ShouldBeTrue();
        changes.KeepsByKey("other").ShouldBeTrue();
    }

    [Fact]
    public void A_sink_without_one_is_not()
    {
        var (map, context, _) = Parse("sink:\n  table: events\n");
        new RedisRealtimeSinkType().Parse(map, context).ShouldNotBeAssignableTo<IChangeStreamSink>();
    }

    private static (ConfigMap Map, RecipeContext Context, ConfigErrors Errors) Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var map = ConfigMap.Parse(yaml, "recipe.yaml", errors)!.Map("sink")!;
        return (map, new RecipeContext("orders", ".", errors), errors);
    }

    /// <summary>A whole sink type in three lines: what a new connector writes.</summary>
    private sealed class EchoSinkType() : SinkType<string>("echo")
    {
        protected override string ParseOptions(ConfigMap map, RecipeContext recipe) => map.RequiredString("label");

        protected override IBatchSink Create(string options, string recipe, IEngineServices services) => new EchoSink($"{recipe}/{options}");
    }

    private sealed class EchoSink(string name) : IBatchSink
    {
        public string Name => name;

        public Task WriteAsync(RecordBatch batch, string checkpointKey, CancellationToken ct) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
