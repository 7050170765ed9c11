using System.Diagnostics;

namespace Sluice.Serving.Observability;

/// <summary>
/// The process's own memory and collector at <c>GET /metrics</c>: every buffer of the server is bounded, and these are
/// what shows whether the bounds hold (resident memory) and what allocation costs (collections, time paused).
/// </summary>
public static class ProcessGauges
{
    public static IEnumerable<GaugeValue> Read()
    {
        using var self = Process.GetCurrentProcess();
        yield return new GaugeValue("sluice_process_resident_bytes", "Resident memory of the process.", "", self.WorkingSet64);
        yield return new GaugeValue("sluice_process_cpu_seconds", "CPU time the process has used, user and system.", "", self.TotalProcessorTime.TotalSeconds);
        yield return new GaugeValue("sluice_gc_heap_bytes", "Bytes the managed heap holds, live and not yet collected.", "", GC.GetTotalMemory(false));
        yield return new GaugeValue("sluice_gc_allocated_bytes", "Bytes allocated on the managed heap since the start.", "", GC.GetTotalAllocatedBytes());
        yield return new GaugeValue("sluice_gc_pause_seconds", "Time the collector has paused the process since the start.", "", GC.GetTotalPauseDuration().TotalSeconds);
        for (var generation = 0; generation <= GC.MaxGeneration; generation++)
        {
            yield return new GaugeValue("sluice_gc_collections", "Collections of each generation since the start.",
                PrometheusMetrics.Label(("generation", generation.ToString(System.Globalization.CultureInfo.InvariantCulture))), GC.CollectionCount(generation));
        }
    }
}
