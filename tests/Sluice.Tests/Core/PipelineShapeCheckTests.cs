using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;
using Sluice.Transforms.Sql;

namespace Sluice.Tests.Core;

/// <summary>
/// The load-time check of the tables and columns a pipeline's steps and sinks name (<see cref="PipelineShapeCheck"/>):
/// each kind of mistake is reported at the line of the option that makes it, naming the component and what is there
/// instead; what the steps add or the source cannot tell offline is not reported.
/// </summary>
public sealed class PipelineShapeCheckTests : IDisposable
{
    private readonly string _root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sluice-shapes-" + Guid.NewGuid().ToString("N"))).FullName;

    // A pulled table `orders` with _id, _modified, customer, amount, placed_at (line 3 is `source:`).
    private const string Pull = """
            source:
              type: postgres_pull
              table: shop.orders
              columns: { customer: string, amount: double, placed_at: timestamp }
        """ + "\n";

    [Fact]
    public void A_filter_on_a_column_the_map_renamed_is_reported_at_its_line_with_the_step_that_renamed_it()
    {
        var (errors, _) = Load(Pull + """
                steps:
                  - type: map
                    rename: { amount: total }
                  - type: filter
                    where: "amount > 10"
                sinks:
                  - type: lake
                    zone: shop
                    partition_by: placed_at
            """);

        errors.ShouldBe(["recipe.yaml:11: pipelines.p.steps[1].where: filter: column 'amount' of table 'orders' is not there any more: it was renamed to 'total' by steps[0] (map)"]);
    }

    [Fact]
    public void A_redis_key_naming_a_column_the_table_lacks_is_reported_with_the_table_s_columns()
    {
        var (errors, _) = Load(Pull + """
                sinks:
                  - type: redis
                    table: orders
                    key: "spend:{user_id}"
                    value: amount
            """);

        errors.ShouldBe(["recipe.yaml:10: pipelines.p.sinks[0].key: redis sink: table 'orders' has no column 'user_id' at this point (its columns: _id, _modified, customer, amount, placed_at)"]);
    }

    [Fact]
    public void A_postgres_sink_key_the_map_dropped_is_reported_after_the_steps()
    {
        var (errors, _) = Load(Pull + """
                steps:
                  - type: map
                    drop: [customer]
                sinks:
                  - type: postgres
                    schema: out
                    keys: { orders: [customer] }
            """);

        errors.ShouldBe(["recipe.yaml:10: pipelines.p.sinks: postgres sink postgres:out: keys.orders names 'customer', which is not a column of the table (its columns: _id, _modified, amount, placed_at)"]);
    }

    [Fact]
    public void Tables_no_source_hands_on_are_reported_for_steps_and_for_sinks_that_name_one()
    {
        var (errors, _) = Load(Pull + """
                steps:
                  - type: dedup
                    tables: [order]
                    key: [_id]
                sinks:
                  - type: http
                    url: http://127.0.0.1:9/x
                  - type: clickhouse
                    url: http://127.0.0.1:9
                    table: orders
                    order_by: [placed_at, sku]
            """);

        errors.ShouldBe([
            "recipe.yaml:9: pipelines.p.steps[0].tables: dedup: no table 'order' reaches this point (tables: orders)",
            "recipe.yaml:12: pipelines.p.sinks[0].table: http sink: no table 'events_enriched' reaches this point (tables: orders)",
            "recipe.yaml:17: pipelines.p.sinks[1].order_by: clickhouse sink: table 'orders' has no column 'sku' at this point (its columns: _id, _modified, customer, amount, placed_at)",
        ]);
    }

    [Fact]
    public void Casts_and_expressions_read_the_renamed_row_so_a_derived_column_cannot_be_cast_in_the_same_map()
    {
        var (errors, _) = Load(Pull + """
                steps:
                  - type: map
                    derive: { cents: "round(Amount * 100)", who: "upper(buyer)" }
                    cast: { cents: integer }
                  - type: lookup
                    key: customer_id
                    dimension: { table: customers, key: id }
                    fields: { region: string }
                  - type: hash_pii
                    fields: [email]
                sinks:
                  - type: lake
                    zone: shop
                    partition_by: placed_at
            """);

        errors.ShouldBe([
            "recipe.yaml:9: pipelines.p.steps[0].derive.who: map: table 'orders' has no column 'buyer' at this point (its columns: _id, _modified, customer, amount, placed_at)",
            "recipe.yaml:10: pipelines.p.steps[0].cast.cents: map: table 'orders' has no column 'cents' at this point (its columns: _id, _modified, customer, amount, placed_at)",
            "recipe.yaml:12: pipelines.p.steps[1].key: lookup: table 'orders' has no column 'customer_id' at this point (its columns: _id, _modified, customer, amount, placed_at, cents, who)",
            "recipe.yaml:16: pipelines.p.steps[2].fields: hash_pii: table 'orders' has no column 'email' at this point (its columns: _id, _modified, customer, amount, placed_at, cents, who, region)",
        ]);
    }

    [Fact]
    public void Columns_steps_add_are_there_for_later_steps_and_sinks_and_a_valid_pipeline_has_no_problem()
    {
        var (errors, recipe) = Load(Pull + """
                steps:
                  - type: lookup
                    key: customer
                    dimension: { table: customers, key: id }
                    fields: { region: string }
                    prefix: c_
                  - type: map
                    rename: { amount: total }
                    derive: { big: "total > 100 AND c_region IS NOT NULL" }
                    cast: { total: integer }
                  - type: filter
                    where: "big AND list_count(list_filter([total], lambda x: x > 1)) > 0"
                sinks:
                  - type: redis
                    table: orders
                    key: "region:{c_region}"
                    value: total
            """);

        errors.ShouldBeEmpty();
        recipe!.Pipelines.Single().Unchecked.ShouldBeNull();
    }

    [Fact]
    public void Offline_a_cdc_source_s_columns_are_unknown_but_what_the_steps_declare_is_still_checked()
    {
        var (errors, recipe) = Load("""
                source:
                  type: postgres_cdc
                  tables:
                    orders: { on_update: emit, on_delete: emit }
                steps:
                  - type: map
                    tables: [orders]
                    rename: { amount: total }
                  - type: filter
                    tables: [orders]
                    where: "amount > 0 AND anything_else IS NOT NULL"
                sinks:
                  - type: redis
                    table: orders
                    key: "o:{id}"
            """);

        errors.ShouldBe(["recipe.yaml:13: pipelines.p.steps[1].where: filter: column 'amount' of table 'orders' is not there any more: it was renamed to 'total' by steps[0] (map)"]);
        recipe.ShouldBeNull();
    }

    [Fact]
    public void With_the_server_s_columns_a_cdc_pipeline_is_checked_like_any_other()
    {
        var (errors, recipe) = Load("""
                source:
                  type: postgres_cdc
                  tables:
                    orders: { on_update: emit, on_delete: emit }
                sinks:
                  - type: redis
                    table: orders
                    key: "o:{id}"
            """);
        errors.ShouldBeEmpty();
        var pipeline = recipe!.Pipelines.Single();
        pipeline.Unchecked.ShouldBe("source 'postgres_cdc' learns its tables' columns from its server, so only `sluice validate --connect` checks the columns steps and sinks name");

        var connected = new Sluice.Core.Config.ConfigErrors();
        var orders = new TableSchema("orders", [new FieldSpec("order_id", FieldType.Integer, false), .. ChangeEnvelope.Fields]);
        pipeline.Shapes!.Run(BatchShape.Of([orders]), connected).ShouldBeNull();

        connected.All.Select(e => $"{Path.GetFileName(e.File)}:{e.Line}: {e.Key}: {e.Message}").ShouldBe([
            $"recipe.yaml:10: pipelines.p.sinks[0].key: redis sink: table 'orders' has no column 'id' at this point (its columns: order_id, {string.Join(", ", ChangeEnvelope.Fields.Select(f => f.Name))})",
        ]);
    }

    [Fact]
    public void After_flatten_and_unknown_steps_nothing_unknowable_is_reported()
    {
        var (errors, recipe) = Load(Pull + """
                steps:
                  - type: flatten
                    column: customer
                  - type: filter
                    where: "customer_city = 'Oslo'"
                sinks:
                  - type: redis
                    table: orders_items
                    key: "i:{sku}"
            """);

        errors.ShouldBeEmpty();
        recipe!.Pipelines.Single().Unchecked.ShouldBe("steps[0] (flatten) makes columns and child tables from JSON, known only from the data");
    }

    [Fact]
    public void A_step_s_expression_columns_are_read_from_DuckDB_s_parse_tree()
    {
        SqlExpression.Columns("a + B.c > 1 AND list_count(list_filter(xs, lambda x: x > d)) > 0")!.Select(c => string.Join(".", c)).ShouldBe(["a", "B.c", "xs", "d"]);
        SqlExpression.Columns("x IN (SELECT y FROM t)").ShouldBeNull();
    }

    [Fact]
    public void Loaded_for_a_cluster_a_pull_with_a_lake_sink_declares_the_offset_column_its_rows_carry_there_and_only_then()
    {
        const string Steps = """
                steps:
                  - type: filter
                    where: "_offset > 0"
            """ + "\n";
        const string Lake = """
                sinks:
                  - type: lake
                    zone: shop
                    partition_by: placed_at
            """;
        const string Keyed = """
                sinks:
                  - type: postgres
                    schema: out
                    keys: { orders: [_id, _modified] }
            """;

        Load(Pull + Steps + Lake, cluster: true).Errors.ShouldBeEmpty("cluster mode numbers a pull's rows for the lake sink (PullStreamSource.CarrySequences)");
        var single = "recipe.yaml:9: pipelines.p.steps[0].where: filter: table 'orders' has no column '_offset' at this point (its columns: _id, _modified, customer, amount, placed_at)";
        Load(Pull + Steps + Lake).Errors.ShouldBe([single], "a single process's pull rows carry no _offset");
        Load(Pull + Steps + Keyed, cluster: true).Errors.ShouldBe([single], "nor do a cluster's without a sink that skips replays by it");
    }

    private (List<string> Errors, Recipe? Recipe) Load(string pipeline, bool cluster = false)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_root, Guid.NewGuid().ToString("N"))).FullName;
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), "pipelines:\n  p:\n" + pipeline.TrimEnd() + "\n");
        var (recipe, errors) = new RecipeLoader(Components.Create()) { Cluster = cluster }.TryLoad(folder);
        return (errors.All.Select(e => $"{Path.GetFileName(e.File)}:{e.Line}: {e.Key}: {e.Message}").ToList(), errors.Any ? null : recipe);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
