using System.Text;

namespace Sluice.IntegrationTests.Support;

/// <summary>Hand-written vehicle files for tests that need exact content.</summary>
internal static class VehicleFiles
{
    public static string Events(params (string Vehicle, string Time, string Type)[] events) =>
        "{\n  \"vehicles_events\": [\n" +
        string.Join(",\n", events.Select(e => $"    {{\"vehicle_id\": \"{e.Vehicle}\", \"event_time\": \"{e.Time}\", \"event_source\": \"sensor\", \"event_type\": \"{e.Type}\"}}")) +
        "\n  ]\n}\n";

    public static void Write(string folder, string name, string content)
    {
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, "." + name + ".tmp");
        File.WriteAllText(temp, content, new UTF8Encoding(false));
        File.Move(temp, Path.Combine(folder, name));
    }
}
