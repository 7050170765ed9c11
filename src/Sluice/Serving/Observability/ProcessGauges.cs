using System.Diagnostics;
using System.Globalization;

namespace Sluice.Serving.Observability;

/// <summary>
/// The process's own memory and collector at <c>GET /metrics</c>: every buffer of the server is bounded, and these are
/// what shows whether the bounds hold (resident memory) and what allocation costs (collections, time paused).
/// </summary>
public static class ProcessGauges
{
    public static void Register(ServerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var resident = metrics.Gauge("sluice_process_resident_bytes", "Resident memory of the process.");
        var cpu = metrics.Gauge("sluice_process_cpu_seconds", "CPU time the process has used, user and system.");
        var heap = metrics.Gauge("sluice_gc_heap_bytes", "Bytes the managed heap holds, live and not yet collected.");
        var allocated = metrics.Gauge("sluice_gc_allocated_bytes", "Bytes allocated on the managed heap since the start.");
        var pause = metrics.Gauge("sluice_gc_pause_seconds", "Time the collector has paused the process since the start.");
        var collections = metrics.Gauge("sluice_gc_collections", "Collections of each generation since the start.", "generation");
        metrics.BeforeScrape(() =>
        {
            using var self = Process.GetCurrentProcess();
            resident.Set(self.WorkingSet64);
            cpu.Set(self.TotalProcessorTime.TotalSeconds);
            heap.Set(GC.GetTotalMemory(false));
            allocated.Set(GC.GetTotalAllocatedBytes());
            pause.Set(GC.GetTotalPauseDuration().TotalSeconds);
            for (var generation = 0; generation <= GC.MaxGeneration; generation++)
            {
                collections.WithLabels(generation.ToString(CultureInfo.InvariantCulture)).Set(GC.CollectionCount(generation));
            }
        });
    }
}
