using Sluice.Connectors.Lake;
using Sluice.Core.Pipeline;
using Sluice.IntegrationTests.Chaos;
using Sluice.IntegrationTests.Support;
using Sluice.Lake;

namespace Sluice.IntegrationTests.SinkConformance;

/// <summary>The <c>lake</c> sink (changes and mirror), on a data folder of its own small tmpfs: its transient failure is a full disk.</summary>
public sealed class LakeSinkFixture : SinkFixture, IMirrorFixture
{
    private readonly string _zone = "conf_" + Guid.NewGuid().ToString("N")[..8];
    private Tmpfs? _disk;

    public LakeSinkFixture() => Engine = new Engine(mount: folder => _disk = Tmpfs.Mount(folder, megabytes: 64));

    public override Engine Engine { get; }

    public override SinkKind Kind => SinkKind.Append;

    public override ISinkType Type => new LakeSinkType();

    public override string MirrorOption => "zone: z\nmode: mirror\n";

    public override IBatchSink Create(ITransientFault? fault = null) =>
        new LakeSink(Engine.Services, new LakeSinkOptions { Zone = _zone, PartitionBy = "ts", CompactInterval = TimeSpan.Zero });

    public IBatchSink CreateMirror() =>
        new LakeSink(Engine.Services, new LakeSinkOptions { Mode = LakeSinkMode.Mirror, Zone = _zone + "_m", PositionColumn = Core.Schema.ChangeEnvelope.Lsn, CompactInterval = TimeSpan.Zero });

    public override Task<List<string>> ReadAsync() => Task.FromResult(Read($"SELECT * FROM {_zone}.items", note: true));

    public Task<List<string>> ReadMirrorAsync() => Task.FromResult(Read($"SELECT id, name, qty FROM {_zone}_m.items", note: false));

    public Task FoldAsync()
    {
        var files = Engine.Services.Lake.FileEntries($"{_zone}_m.items");
        new MirrorCompactor(Engine.Services.Lake).FoldAll(Engine.Services.Lake.Table($"{_zone}_m.items")!, files, null, CancellationToken.None).ShouldBe(files.Count, "every file folded");
        return Task.CompletedTask;
    }

    private List<string> Read(string sql, bool note)
    {
        var result = Engine.Services.Query.Query(sql);
        return result.Rows.Select(r => SinkRows.Text(result.Columns.Select((c, i) => (c, r[i])), note)).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The disk filled to the last byte, then freed: the runner writes the batch again every 2 s meanwhile, red in health.</summary>
    public override Task<ITransientFault> FaultAsync() => Task.FromResult<ITransientFault>(new DiskFault(_disk!, Engine.Services.Health));

    private sealed class DiskFault(Tmpfs disk, Core.HealthState health) : ITransientFault
    {
        public void Break() => disk.Fill(leftKiB: 0);

        public void Heal() => disk.Free();

        public int Failures => health.Failures.Count;

        public ValueTask DisposeAsync()
        {
            disk.Free();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>Rows read back as the suite compares them.</summary>
internal static class SinkRows
{
    /// <summary><c>id=.. name=.. qty=.. note=..</c> from a row's columns by name (a column the sink does not have is empty); <c>note</c> only where asked.</summary>
    public static string Text(IEnumerable<(string Column, object? Value)> row, bool note = true)
    {
        var values = row.ToDictionary(p => p.Column, p => p.Value is null or DBNull ? "" : Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);
        string V(string name) => values.GetValueOrDefault(name) ?? "";
        return $"id={V("id")} name={V("name")} qty={V("qty")}" + (note ? $" note={V("note")}" : "");
    }
}
