namespace Sluice.Connectors.Http.Ingest;

/// <summary>What <see cref="ByteBudget.TryTake"/> decided.</summary>
public enum BudgetAnswer
{
    Taken,

    /// <summary>The whole budget is held by requests in flight.</summary>
    Full,

    /// <summary>This tenant already holds its share: the others keep the rest.</summary>
    TenantFull,
}

/// <summary>
/// A bound on bytes held at once (request bodies in memory): take before reading, give back after. One tenant may hold
/// at most <c>tenantShare</c> of it, so a tenant whose requests are slow (or slow on purpose) cannot keep every other
/// tenant's requests out. A holder of nothing may always take one request, even one larger than its share or than the
/// remainder, so a single request of the largest allowed size is never refused forever.
/// </summary>
public sealed class ByteBudget
{
    private readonly Lock _gate = new();
    // Only tenants holding bytes now are here (removed at zero): at most one entry per request in flight.
    private readonly Dictionary<string, long> _byTenant = new(StringComparer.Ordinal);
    private long _used;

    public ByteBudget(long capacity, double tenantShare = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (tenantShare is <= 0 or > 1 || double.IsNaN(tenantShare))
        {
            throw new ArgumentOutOfRangeException(nameof(tenantShare), tenantShare, "a share is a fraction above 0 and at most 1");
        }

        Capacity = capacity;
        TenantCapacity = Math.Max(1, (long)(capacity * tenantShare));
    }

    public long Capacity { get; }

    /// <summary>Most bytes one tenant may hold at once.</summary>
    public long TenantCapacity { get; }

    public long Used => Volatile.Read(ref _used);

    /// <summary>Bytes the tenant holds now.</summary>
    public long UsedBy(string tenant)
    {
        lock (_gate)
        {
            return _byTenant.GetValueOrDefault(tenant);
        }
    }

    public BudgetAnswer TryTake(string tenant, long bytes)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        lock (_gate)
        {
            if (_used + bytes > Capacity && _used > 0)
            {
                return BudgetAnswer.Full;
            }

            var held = _byTenant.GetValueOrDefault(tenant);
            if (held + bytes > TenantCapacity && held > 0)
            {
                return BudgetAnswer.TenantFull;
            }

            _byTenant[tenant] = held + bytes;
            Volatile.Write(ref _used, _used + bytes);
            return BudgetAnswer.Taken;
        }
    }

    public void Give(string tenant, long bytes)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        lock (_gate)
        {
            var left = _byTenant.GetValueOrDefault(tenant) - bytes;
            if (left > 0) { _byTenant[tenant] = left; }
            else { _byTenant.Remove(tenant); }
            Volatile.Write(ref _used, _used - bytes);
        }
    }
}
