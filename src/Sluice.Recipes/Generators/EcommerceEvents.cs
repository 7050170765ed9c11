using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Sluice.Recipes.Generators;

/// <summary>
/// Realistic <c>ecommerce</c> events in the seed's shape (schema_version 1, and 2 with a session): page views, carts,
/// purchases and refunds with items, customers (e-mail is PII), ML scores and processing flags.
/// </summary>
#pragma warning disable CA5394 // Sample data, not security: a seeded generator makes runs repeatable.
public sealed class EcommerceEvents(Random random, int customersPerTenant = 500)
{
    private static readonly string[] Countries = ["DE", "FR", "US", "GB", "NL", "ES", "IT", "PL", "SE", "BR"];
    private static readonly string[] Currencies = ["EUR", "USD", "GBP"];
    private static readonly string[] Devices = ["ios", "android", "web", "desktop"];
    private static readonly (string Type, double Weight)[] Types = [("page_view", 0.6), ("add_to_cart", 0.25), ("purchase", 0.12), ("refund", 0.03)];

    /// <summary>Writes one event as UTF-8 JSON.</summary>
    public void Write(IBufferWriter<byte> output, string tenant, string eventId, DateTime timestamp, int version = 0)
    {
        version = version == 0 ? (random.NextDouble() < 0.5 ? 1 : 2) : version;
        var type = PickType();
        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        json.WriteString("event_id", eventId);
        json.WriteNumber("schema_version", version);
        json.WriteString("tenant_id", tenant);
        json.WriteString("event_type", type);
        json.WriteString("event_ts", timestamp.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        var customer = random.Next(customersPerTenant);
        json.WriteStartObject("customer");
        json.WriteString("id", string.Create(CultureInfo.InvariantCulture, $"{tenant}-c{customer}"));
        json.WriteString("email", string.Create(CultureInfo.InvariantCulture, $"customer{customer}@{tenant}.example"));
        json.WriteString("country", Countries[customer % Countries.Length]);
        json.WriteEndObject();
        if (type is "purchase" or "refund" or "add_to_cart")
        {
            var items = 1 + random.Next(3);
            double total = 0;
            json.WriteStartArray("items");
            for (var i = 0; i < items; i++)
            {
                var qty = 1 + random.Next(3);
                var price = Math.Round(5 + (random.NextDouble() * 95), 2);
                total += qty * price;
                json.WriteStartObject();
                json.WriteString("sku", string.Create(CultureInfo.InvariantCulture, $"SKU-{random.Next(1000):D4}"));
                json.WriteNumber("qty", qty);
                json.WriteNumber("price", price);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            if (type is "purchase" or "refund")
            {
                json.WriteStartObject("order");
                json.WriteString("id", string.Create(CultureInfo.InvariantCulture, $"o-{eventId}"));
                json.WriteNumber("total", Math.Round(total, 2));
                json.WriteString("currency", Currencies[customer % Currencies.Length]);
                json.WriteEndObject();
            }
        }

        json.WriteStartObject("ml_context");
        json.WriteStartObject("model_scores");
        json.WriteNumber("fraud", Math.Round(random.NextDouble(), 3));
        json.WriteNumber("churn", Math.Round(random.NextDouble(), 3));
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteStartObject("processing_flags");
        json.WriteBoolean("pii_contains", true);
        json.WriteEndObject();
        if (version >= 2)
        {
            json.WriteStartObject("session");
            json.WriteString("id", string.Create(CultureInfo.InvariantCulture, $"s-{random.Next(1_000_000)}"));
            json.WriteString("device", Devices[random.Next(Devices.Length)]);
            json.WriteEndObject();
        }

        json.WriteEndObject();
    }

    public string Json(string tenant, string eventId, DateTime timestamp, int version = 0)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        Write(buffer, tenant, eventId, timestamp, version);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>A JSON array of events: one request body.</summary>
    public byte[] Batch(string tenant, IReadOnlyList<string> eventIds, DateTime timestamp)
    {
        ArgumentNullException.ThrowIfNull(eventIds);
        var buffer = new ArrayBufferWriter<byte>(eventIds.Count * 700 + 16);
        buffer.Write("["u8);
        for (var i = 0; i < eventIds.Count; i++)
        {
            if (i > 0) { buffer.Write(","u8); }
            Write(buffer, tenant, eventIds[i], timestamp);
        }

        buffer.Write("]"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private string PickType()
    {
        var roll = random.NextDouble();
        foreach (var (type, weight) in Types)
        {
            if (roll < weight) { return type; }
            roll -= weight;
        }

        return Types[0].Type;
    }
}
