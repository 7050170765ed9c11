using System.Net;
using System.Net.Http.Headers;
using Npgsql;
using Sluice.IntegrationTests.Support;
using Sluice.IntegrationTests.TenantAnalytics;
using Sluice.Recipes.Generators;

namespace Sluice.IntegrationTests.Cluster;

/// <summary>
/// A cluster offered more than it processes refuses instead of growing a backlog (<c>SLUICE_CLUSTER_MAX_PENDING</c>):
/// one worker of tenant-analytics on the services' JetStream, its postgres sink held by a table lock so nothing is
/// processed; past the tiny bound requests get 503 with Retry-After, and once the lock goes and the stream drains they
/// are accepted again. Every event answered 202 is in the table once.
/// </summary>
[Collection(ClusterWorkersSerial.Name)]
public sealed class ClusterOverloadTests
{
    private const int MaxPending = 10;

    [Fact]
    public async Task A_worker_past_max_pending_refuses_with_503_and_retry_after_then_accepts_once_drained_losing_nothing_acknowledged()
    {
        using var temp = new TempFolder("sluice-overload");
        var schema = "overload_" + Guid.NewGuid().ToString("N")[..8];
        var recipe = RecipeVariant.Create(temp, "tenant-analytics",
            ("      - type: lake                     # the embedded warehouse: analytics.events, analytics.event_items\n        zone: analytics\n        partition_by: event_ts\n",
             $"      - type: postgres\n        schema: {schema}\n        connection: \"{ServerSettings.PostgresConnectionString}\"\n        keys:\n          events: [tenant_id, event_id]\n          event_items: [tenant_id, event_id, _index]\n"));
        var cluster = "o" + Guid.NewGuid().ToString("N")[..10];
        var env = ClusterEnvironment.Of(cluster, new Dictionary<string, string> { ["SLUICE_CLUSTER_MAX_PENDING"] = MaxPending.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        string token;
        using (var created = SluiceProcess.Start(Directory.CreateDirectory(temp.Sub("admin")).FullName, env, "tokens", "create", "--role", "writer", "--tenant", "acme", "--cluster"))
        {
            (await created.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBe(0, created.Stderr);
            token = created.Stdout.Trim().Split('\n')[^1];
        }

        using var worker = new ClusterWorker(Directory.CreateDirectory(temp.Sub("worker")).FullName, FreePort.Next(), token, recipe, env);
        worker.Start();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var generator = new EcommerceEvents(new Random(18));
        var acked = new List<string>();
        var refused = new List<string>();
        var sent = 0;

        // One request of 200 events (over the 16 partitions: about 16 messages, past the bound of 10 on its own).
        async Task<HttpResponseMessage> PostAsync(List<string> ids)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{worker.Port}/v1/streams/ecommerce/events"))
            {
                Content = new ByteArrayContent(generator.Batch("acme", ids, new DateTime(2025, 11, 8, 6, 0, 0, DateTimeKind.Utc))),
            };
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return await http.SendAsync(request);
        }

        List<string> NextIds() => Enumerable.Range(0, 200).Select(i => $"ov-{sent}-{i}").ToList();

        try
        {
            await worker.WaitHealthyAsync();
            await using var db = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await db.OpenAsync();

            // The first request makes the sink's table; it lands.
            await AcceptedAsync(PostAsync, NextIds, acked, () => sent++, "the first request");
            await WaitForRowsAsync(db, schema, acked.Count, worker);
            // And acknowledged, as the worker's count of pending messages reads it: a count read between the sink's commit
            // and the acknowledgement still held that request's messages, refused the next request with 503 at once, and
            // then read 0 (CI: the gauge below said 0).
            await WaitForPendingAsync(http, worker, p => p == 0, "the first request's messages acknowledged");

            // The sink blocked (the table locked, reads still allowed): nothing is processed, every message stays pending.
            await using (var locker = new NpgsqlConnection(ServerSettings.PostgresConnectionString))
            {
                await locker.OpenAsync();
                await using var tx = await locker.BeginTransactionAsync();
                await using (var lockCmd = new NpgsqlCommand($"LOCK TABLE {schema}.events IN EXCLUSIVE MODE", locker, tx)) { await lockCmd.ExecuteNonQueryAsync(); }

                // Requests are accepted until the worker's cached pending count (read every 2 s) passes the bound; then 503.
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
                while (true)
                {
                    var ids = NextIds();
                    sent++;
                    using var response = await PostAsync(ids);
                    var body = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode == HttpStatusCode.Accepted)
                    {
                        acked.AddRange(ids);
                    }
                    else
                    {
                        response.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable, body);
                        if (body.Contains("max_pending", StringComparison.Ordinal))
                        {
                            refused.AddRange(ids);
                            response.Headers.RetryAfter?.Delta.ShouldBe(TimeSpan.FromSeconds(5), "the same Retry-After as one process's backlog refusal");
                            body.ShouldContain($"(max_pending {MaxPending})");
                            break;
                        }
                    }

                    DateTime.UtcNow.ShouldBeLessThan(deadline, $"no 503 for max_pending within 180 s of the sink being blocked ({acked.Count} events accepted); last answer {(int)response.StatusCode}: {body}\n{worker.Stderr}");
                    await Task.Delay(200);
                }

                // The metric says why.
                var metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{worker.Port}/metrics"));
                var line = metrics.Split('\n').First(l => l.StartsWith("sluice_cluster_pending_messages{", StringComparison.Ordinal));
                double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(MaxPending, line);
                await tx.RollbackAsync();
            }

            // The sink free again: the stream drains and requests are accepted again.
            await AcceptedAsync(PostAsync, NextIds, acked, () => sent++, "a request after the sink was freed");
            await WaitForRowsAsync(db, schema, acked.Count, worker);
            await using var present = new NpgsqlCommand($"SELECT count(*) FROM {schema}.events WHERE event_id = ANY(@ids)", db);
            present.Parameters.AddWithValue("ids", acked.ToArray());
            ((long)(await present.ExecuteScalarAsync())!).ShouldBe(acked.Count, "every event answered 202 is in the sink");
            await using var distinct = new NpgsqlCommand($"SELECT count(*) - count(DISTINCT (tenant_id, event_id)) FROM {schema}.events", db);
            ((long)(await distinct.ExecuteScalarAsync())!).ShouldBe(0, "each once");
            // Refused before it was parsed: nothing of it was published.
            await using var none = new NpgsqlCommand($"SELECT count(*) FROM {schema}.events WHERE event_id = ANY(@ids)", db);
            none.Parameters.AddWithValue("ids", refused.ToArray());
            ((long)(await none.ExecuteScalarAsync())!).ShouldBe(0, "nothing of a request refused for max_pending is in the sink");
        }
        finally
        {
            worker.Kill();
            await using var drop = new NpgsqlConnection(ServerSettings.PostgresConnectionString);
            await drop.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS {schema} CASCADE; DROP SCHEMA IF EXISTS sluice_meta_{cluster} CASCADE", drop);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Sends fresh requests until one is answered 202 (a 503 is waited out as its Retry-After says), within 180 s.</summary>
    private static async Task AcceptedAsync(Func<List<string>, Task<HttpResponseMessage>> post, Func<List<string>> nextIds, List<string> acked, Action counted, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        while (true)
        {
            var ids = nextIds();
            counted();
            using var response = await post(ids);
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                acked.AddRange(ids);
                return;
            }

            response.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable, body);
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{what} was not accepted within 180 s; last answer: {body}");
            await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>Waits, within 180 s, until the worker's gauge of pending messages satisfies <paramref name="done"/>.</summary>
    private static async Task WaitForPendingAsync(HttpClient http, ClusterWorker worker, Func<double, bool> done, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        var line = "";
        while (true)
        {
            var metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{worker.Port}/metrics"));
            line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("sluice_cluster_pending_messages{", StringComparison.Ordinal)) ?? "";
            if (line.Length > 0 && done(double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture))) { return; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{what}: not within 180 s ({line})\n{worker.Stderr}");
            await Task.Delay(250);
        }
    }

    private static async Task WaitForRowsAsync(NpgsqlConnection db, string schema, int expected, ClusterWorker worker)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
        while (true)
        {
            await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {schema}.events", db);
            long rows;
            try
            {
                rows = (long)(await cmd.ExecuteScalarAsync())!;
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
            {
                rows = 0; // the sink makes its schema and table with the first batch
            }

            if (rows >= expected) { return; }
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{rows} of {expected} events in {schema}.events after 180 s\n{worker.Stderr}");
            await Task.Delay(250);
        }
    }
}
