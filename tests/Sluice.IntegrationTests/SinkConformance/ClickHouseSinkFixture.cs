using System.Text.Json;
using Sluice.Connectors.ClickHouse;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Support;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>The <c>clickhouse</c> sink (ReplacingMergeTree by <c>id</c>, versioned by <c>_offset</c>; and mirror) in a database of its own; read with <c>FINAL</c>.</summary>
public sealed class ClickHouseSinkFixture : SinkFixture, IMirrorFixture
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly string _database = "conf_" + Guid.NewGuid().ToString("N")[..8];

    public override Engine Engine { get; } = new();

    public override SinkKind Kind => SinkKind.Keyed;

    public override ISinkType Type => new ClickHouseSinkType();

    public override string MirrorOption => "table: t\nmode: mirror\n";

    public override IBatchSink Create(ITransientFault? fault = null) => new ClickHouseSink(Engine.Services, new ClickHouseOptions
    {
        Name = "clickhouse",
        Url = Url(fault),
        Database = _database,
        Table = "items",
        OrderBy = ["id"],
        Version = "_offset",
        RetryDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(500),
        InsertLinger = TimeSpan.FromMilliseconds(50),
    });

    public IBatchSink CreateMirror() => new ClickHouseSink(Engine.Services, new ClickHouseOptions
    {
        Name = "clickhouse-mirror", Url = Url(null), Database = _database + "_m", Table = "items", OrderBy = [], Mirror = true, InsertLinger = TimeSpan.Zero,
    });

    private static Uri Url(ITransientFault? fault) => fault is FlakyProxy proxy ? new Uri($"http://127.0.0.1:{proxy.Port}") : new Uri(ServerSettings.ClickHouseUrl);

    public override Task<List<string>> ReadAsync() => QueryAsync($"SELECT * FROM {_database}.items FINAL", note: true);

    public Task<List<string>> ReadMirrorAsync() => QueryAsync($"SELECT id, name, qty FROM {_database}_m.items_current", note: false);

    public async Task FoldAsync()
    {
        using var response = await Http.PostAsync(ServerSettings.ClickHouseUrl, new StringContent($"OPTIMIZE TABLE {_database}_m.items FINAL"));
        response.EnsureSuccessStatusCode();
    }

    private static async Task<List<string>> QueryAsync(string sql, bool note)
    {
        using var response = await Http.PostAsync(ServerSettings.ClickHouseUrl, new StringContent(sql + " FORMAT JSONEachRow"));
        var text = await response.Content.ReadAsStringAsync();
        response.EnsureSuccessStatusCode();
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Select(row => SinkRows.Text(row.EnumerateObject().Select(p => (p.Name, p.Value.ValueKind == JsonValueKind.Null ? null : (object?)(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText()))), note))
            .Order(StringComparer.Ordinal).ToList();
    }

    public override Task<ITransientFault> FaultAsync()
    {
        var url = new Uri(ServerSettings.ClickHouseUrl);
        return Task.FromResult<ITransientFault>(new FlakyProxy(url.Host, url.Port));
    }

    protected override async Task CleanUpAsync()
    {
        using (await Http.PostAsync(ServerSettings.ClickHouseUrl, new StringContent($"DROP DATABASE IF EXISTS {_database}"))) { }
        using (await Http.PostAsync(ServerSettings.ClickHouseUrl, new StringContent($"DROP DATABASE IF EXISTS {_database}_m"))) { }
    }
}
