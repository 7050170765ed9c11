using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.Examples;

/// <summary>
/// <c>sluice validate --connect</c> against the real servers: every problem of every component in one run, each one
/// line naming the recipe, the component and the key; and an example recipe whose servers are ready passes.
/// </summary>
public sealed class ValidateConnectTests
{
    [Fact]
    public async Task Missing_tables_and_columns_and_servers_that_do_not_answer_are_each_reported_on_one_line()
    {
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters");
        await world.ExecuteAsync("""
            CREATE TABLE customers (id integer PRIMARY KEY, name text, region_id integer, updated_at timestamptz);
            CREATE TABLE log_lines (line text, at timestamptz);
            CREATE TABLE regions (region_id integer PRIMARY KEY, name text);
            """);
        // Ports that refuse for the whole test: a merely free one may be taken, or self-connected, on a busy machine.
        using var clickhouseRefusing = FreePort.Refusing();
        using var redisRefusing = FreePort.Refusing();
        using var apiRefusing = FreePort.Refusing();
        var (clickhouse, redis, api) = (clickhouseRefusing.Port, redisRefusing.Port, apiRefusing.Port);
        var recipe = Recipe(world, "validate-connect", $$"""
            pipelines:
              changes:
                source:
                  type: postgres_cdc
                  connection: { database: "${PGDATABASE:-sluice}" }
                  publication: validate_connect
                  slot: validate_connect_{{world.Id}}
                  tables:
                    customers: { on_update: emit, on_delete: emit }
                    missing_table: { on_update: emit, on_delete: emit }
                    log_lines: { on_update: emit, on_delete: emit }
                steps:
                  - type: lookup
                    tables: [customers]
                    key: region_id
                    dimension:
                      table: regions
                      connection: { database: "${PGDATABASE:-sluice}" }
                    fields: [name, timezone]
                sinks:
                  - type: postgres
                    schema: out
                    keys: { customers: [id], log_lines: [line] }
                  - type: clickhouse
                    url: http://127.0.0.1:{{clickhouse}}
                    table: customers
                    order_by: [id]
                  - type: redis
                    url: redis://127.0.0.1:{{redis}}
                    table: customers
                    key: "c:{id}"
                  - type: http
                    url: http://127.0.0.1:{{api}}/customers
                    table: customers
              pulled:
                source:
                  type: postgres_pull
                  table: customers
                  updated_column: changed_at
                  columns: { name: string, nickname: string }
                sinks:
                  - type: lake
                    zone: crm
                    partition_by: _modified
            """);

        var (code, output, error) = await ValidateAsync(world, recipe);

        code.ShouldBe(1, output + error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();
        lines.ShouldBe([
            $"validate-connect: pipelines.changes.sinks[1] (clickhouse): url: clickhouse at http://127.0.0.1:{clickhouse} does not answer: Connection refused",
            $"validate-connect: pipelines.changes.sinks[2] (redis): url: redis at 127.0.0.1:{redis} does not answer: It was not possible to connect to the redis server(s)",
            $"validate-connect: pipelines.changes.sinks[3] (http): url: http://127.0.0.1:{api}/customers does not answer: Connection refused",
            "validate-connect: pipelines.changes.source (postgres_cdc): tables: public.log_lines has no primary key, so Postgres cannot publish its updates and deletes (and refuses them once it is published): add a primary key or ALTER TABLE ... REPLICA IDENTITY FULL",
            $"validate-connect: pipelines.changes.source (postgres_cdc): tables: public.missing_table not found in database '{world.Database}'",
            "validate-connect: pipelines.changes.steps[0] (lookup): fields: column 'timezone' not found in public.regions (its columns: region_id, name)",
            "validate-connect: pipelines.pulled.source (postgres_pull): columns: column 'nickname' not found in public.customers (its columns: id, name, region_id, updated_at)",
            "validate-connect: pipelines.pulled.source (postgres_pull): updated_column: column 'changed_at' not found in public.customers (its columns: id, name, region_id, updated_at)",
        ], customMessage: error);
        error.ShouldNotContain("valid (");
    }

    [Fact]
    public async Task A_role_without_replication_and_a_postgres_sink_on_a_wrong_port_are_reported()
    {
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters");
        var role = $"sluice_norep_{world.Id}";
        await world.ExecuteAsync($"CREATE TABLE customers (id integer PRIMARY KEY, name text); CREATE ROLE {role} LOGIN PASSWORD 'norep'");
        try
        {
            using var refusing = FreePort.Refusing();
            var port = refusing.Port;
            var recipe = Recipe(world, "validate-role", $$"""
                pipelines:
                  changes:
                    source:
                      type: postgres_cdc
                      connection: { user: {{role}}, password: norep, database: "${PGDATABASE:-sluice}" }
                      publication: validate_role
                      slot: validate_role_{{world.Id}}
                      tables:
                        customers: { on_update: emit, on_delete: emit }
                    sinks:
                      - type: postgres
                        connection: "Host=127.0.0.1;Port={{port}};Username=sluice;Database=nowhere"
                        schema: out
                        keys: { customers: [id] }
                """);

            var (code, output, error) = await ValidateAsync(world, recipe);

            var pg = Connectors.Postgres.PostgresConnectionOptions.FromEnvironment();
            var server = $"postgres {role}@{pg.Host}:{pg.Port}/{world.Database}";
            code.ShouldBe(1, output + error);
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList().ShouldBe([
                $"validate-role: pipelines.changes.sinks[0] (postgres): connection: cannot connect to postgres sluice@127.0.0.1:{port}/nowhere: Connection refused",
                $"validate-role: pipelines.changes.source (postgres_cdc): connection: role '{role}' has neither REPLICATION nor SUPERUSER ({server}), so it cannot create or read the replication slot (ALTER ROLE \"{role}\" REPLICATION)",
                $"validate-role: pipelines.changes.source (postgres_cdc): publication: 'validate_role' does not exist and role '{role}' may not create it ({server}; it needs CREATE on database '{world.Database}': GRANT CREATE ON DATABASE ...)",
            ], customMessage: error);
        }
        finally
        {
            await PgTestDatabase.ExecuteAsync(Connectors.Postgres.PostgresConnectionOptions.FromEnvironment(), $"DROP ROLE IF EXISTS {role}");
        }
    }

    [Fact]
    public async Task An_example_recipe_whose_servers_are_ready_passes_with_every_component_checked()
    {
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters");
        await world.ExecuteAsync("CREATE TABLE page_views (id bigserial PRIMARY KEY, page text NOT NULL, viewed_at timestamptz NOT NULL, seconds integer)");

        var (code, output, error) = await ValidateAsync(world, world.RecipeFolder);

        code.ShouldBe(0, output + error);
        error.ShouldContain("cdc-to-redis-counters: valid (1 pipeline(s), 0 job(s); 3 component(s) checked against their servers)");
    }

    [Fact]
    public async Task With_connect_a_cdc_pipeline_s_steps_and_sinks_are_checked_against_the_columns_its_tables_have()
    {
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters");
        await world.ExecuteAsync("CREATE TABLE orders (order_id integer PRIMARY KEY, amount numeric, placed_at timestamptz)");
        var recipe = Recipe(world, "validate-columns", $$"""
            pipelines:
              changes:
                source:
                  type: postgres_cdc
                  connection: { database: "${PGDATABASE:-sluice}" }
                  publication: validate_columns
                  slot: validate_columns_{{world.Id}}
                  tables:
                    orders: { on_update: emit, on_delete: emit }
                steps:
                  - type: map
                    rename: { amount: total }
                sinks:
                  - type: redis
                    url: "${REDIS_URL:-redis://127.0.0.1:6379}"
                    table: orders
                    key: "o:{id}"
                    value: total
            """);

        using var offline = SluiceProcess.Start(world.DataRoot, world.Env, "validate", recipe);
        (await offline.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, offline.Stdout + offline.Stderr);
        offline.Stderr.ShouldContain("validate-columns: pipeline 'changes': not every column checked: source 'postgres_cdc' learns its tables' columns from its server");

        var (code, output, error) = await ValidateAsync(world, recipe);

        code.ShouldBe(1, output + error);
        var columns = string.Join(", ", new[] { "order_id", "total", "placed_at" }.Concat(Core.Schema.ChangeEnvelope.Fields.Select(f => f.Name)));
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[Math.Max(0, l.IndexOf("recipe.yaml", StringComparison.Ordinal))..]).ShouldBe([
            $"recipe.yaml:18: pipelines.changes.sinks[0].key: redis sink: table 'orders' has no column 'id' at this point (its columns: {columns})",
        ], customMessage: error);
    }

    /// <summary>
    /// The shipped engagement-cdc recipe with its ClickHouse sink sorting by a column the enrichment does not output:
    /// <c>engagement_enrich</c> tells what it outputs (<c>IShapesBatches</c>), so the check goes on through it to the sinks.
    /// </summary>
    [Fact]
    public async Task With_connect_a_sink_after_the_engagement_enrichment_is_checked_against_the_columns_the_step_outputs()
    {
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters");
        await world.ExecuteAsync(await File.ReadAllTextAsync(Path.Combine(TestPaths.Recipe("engagement-cdc"), "schema.sql")));
        var shipped = await File.ReadAllTextAsync(Path.Combine(TestPaths.Recipe("engagement-cdc"), "recipe.yaml"));
        const string orderBy = "order_by: [event_ts, content_id, event_id]";
        shipped.ShouldContain(orderBy);
        var folder = Directory.CreateDirectory(Path.Combine(world.DataRoot, "..", "engagement-cdc")).FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "recipe.yaml"), shipped.Replace(orderBy, "order_by: [event_ts, content_id, watched_id]", StringComparison.Ordinal));
        world.Env["SLUICE_NAME_SUFFIX"] = $"_{world.Id}";

        var (code, output, error) = await ValidateAsync(world, folder);

        code.ShouldBe(1, output + error);
        var columns = string.Join(", ", new[] { "event_id", "content_id", "user_id", "event_type", "event_ts", "duration_ms", "device", "content_type", "length_seconds", "title", "engagement_seconds", "engagement_pct" }
            .Concat(Core.Schema.ChangeEnvelope.Fields.Select(f => f.Name)));
        output.ShouldContain($"pipelines.cdc.sinks[0].order_by: clickhouse sink: table 'events_enriched' has no column 'watched_id' at this point (its columns: {columns})", customMessage: error);
        output.Split('\n').Count(l => l.Contains("order_by", StringComparison.Ordinal)).ShouldBe(1, "the columns the enrichment keeps pass: " + output);
    }

    [Fact]
    public async Task A_postgres_sink_whose_role_may_not_create_or_use_its_schema_is_reported_with_each_missing_right()
    {
        await using var world = await ExampleWorld.CreateAsync("cdc-to-redis-counters");
        var role = $"sluice_noschema_{world.Id}";
        await world.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD 'noschema'; CREATE SCHEMA locked; CREATE TABLE facts (id integer PRIMARY KEY, at timestamptz)");
        try
        {
            var pg = Connectors.Postgres.PostgresConnectionOptions.FromEnvironment();
            var recipe = Recipe(world, "validate-schema", $$"""
                pipelines:
                  pulled:
                    source:
                      type: postgres_pull
                      table: facts
                      key_column: id
                      updated_column: at
                    sinks:
                      - type: postgres
                        connection: "Host={{pg.Host}};Port={{pg.Port}};Username={{role}};Password=noschema;Database={{world.Database}}"
                        schema: locked
                        keys: { facts: [_id] }
                """);

            var (code, output, error) = await ValidateAsync(world, recipe);

            code.ShouldBe(1, output + error);
            var server = $"postgres {role}@{pg.Host}:{pg.Port}/{world.Database}";
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldBe([
                $"validate-schema: pipelines.pulled.sinks[0] (postgres): schema: role '{role}' has no CREATE on database '{world.Database}' ({server}), which the sink's CREATE SCHEMA IF NOT EXISTS \"locked\" needs even when the schema exists (GRANT CREATE ON DATABASE \"{world.Database}\" TO \"{role}\")",
                $"validate-schema: pipelines.pulled.sinks[0] (postgres): schema: role '{role}' has no USAGE on schema 'locked' ({server}), so it cannot reach the sink's tables (GRANT USAGE ON SCHEMA \"locked\" TO \"{role}\")",
                $"validate-schema: pipelines.pulled.sinks[0] (postgres): schema: role '{role}' has no CREATE on schema 'locked' ({server}), so it cannot create the sink's tables (GRANT CREATE ON SCHEMA \"locked\" TO \"{role}\")",
            ], customMessage: error);

            await world.ExecuteAsync($"GRANT CREATE ON DATABASE {world.Database} TO {role}; GRANT USAGE, CREATE ON SCHEMA locked TO {role}");
            (code, output, error) = await ValidateAsync(world, recipe);
            code.ShouldBe(0, output + error);
        }
        finally
        {
            await world.ExecuteAsync($"REVOKE ALL ON SCHEMA locked FROM {role}; REVOKE ALL ON DATABASE {world.Database} FROM {role}");
            await PgTestDatabase.ExecuteAsync(Connectors.Postgres.PostgresConnectionOptions.FromEnvironment(), $"DROP ROLE IF EXISTS {role}");
        }
    }

    [Fact]
    public async Task A_salesforce_source_logs_in_against_its_login_url_and_refused_credentials_are_reported()
    {
        await using var world = await ExampleWorld.CreateAsync("salesforce-to-lake");
        await using var salesforce = await RepeatReminder.FakeSalesforce.StartAsync();
        world.Env["SALESFORCE_LOGIN_URL"] = salesforce.Url;
        world.Env["SALESFORCE_CLIENT_ID"] = RepeatReminder.FakeSalesforce.ClientId;
        world.Env["SALESFORCE_CLIENT_SECRET"] = "wrong";

        var (code, output, error) = await ValidateAsync(world, world.RecipeFolder);

        code.ShouldBe(1, output + error);
        output.Trim().ShouldStartWith($"salesforce-to-lake: pipelines.opportunities.source (salesforce): login_url: Salesforce Opportunity via {salesforce.Url.TrimEnd('/')}/: token request refused (400): ", customMessage: error);
        output.Trim().ShouldEndWith("invalid client credentials; check the client id and secret");
        output.Trim().ShouldNotContain('\n');
        salesforce.TokensIssued.ShouldBe(0);

        world.Env["SALESFORCE_CLIENT_SECRET"] = RepeatReminder.FakeSalesforce.Secret;
        (code, output, error) = await ValidateAsync(world, world.RecipeFolder);
        code.ShouldBe(0, output + error);
        salesforce.TokensIssued.ShouldBe(1);
        salesforce.Queries.ShouldBeEmpty();
    }

    private static string Recipe(ExampleWorld world, string name, string body)
    {
        var folder = Directory.CreateDirectory(Path.Combine(world.DataRoot, "..", name)).FullName;
        File.WriteAllText(Path.Combine(folder, "recipe.yaml"), $"name: {name}\n{body}\n");
        return folder;
    }

    private static async Task<(int Code, string Out, string Err)> ValidateAsync(ExampleWorld world, string recipe)
    {
        using var validate = SluiceProcess.Start(world.DataRoot, world.Env, "validate", recipe, "--connect");
        var code = await validate.WaitAsync(TimeSpan.FromMinutes(2));
        return (code, validate.Stdout, validate.Stderr);
    }
}
