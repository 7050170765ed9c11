using System.Reflection;
using Microsoft.Extensions.Logging;
using Sluice.Core.Logging;

namespace Sluice.Tests.Core;

/// <summary>
/// Every <c>[LoggerMessage]</c> of every Sluice assembly has an id of its own, inside its area's range of
/// <see cref="LogEventRanges"/>. The failure names the method, its id, its area's ranges, the method it clashes with
/// and the next free id of the area, so a merge of branches that picked ids in parallel is renumbered from it.
/// </summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void Every_logger_message_id_is_unique_and_inside_its_areas_range()
    {
        var methods = SluiceLoggerMessages().ToList();
        methods.Count.ShouldBeGreaterThan(100, "the reflection found the source-generated messages");
        var problems = LogIdCheck.Problems(methods);
        problems.ShouldBeEmpty(string.Join("\n", problems));
    }

    [Fact]
    public void The_areas_ranges_never_overlap()
    {
        var ranges = LogEventRanges.Areas.SelectMany(a => a.Ranges.Select(r => (Area: a.Name, Range: r))).ToList();
        var clashes = ranges.SelectMany((x, i) => ranges.Skip(i + 1).Where(y => x.Range.Overlaps(y.Range)).Select(y => $"{x.Area} {x.Range} overlaps {y.Area} {y.Range}")).ToList();
        clashes.ShouldBeEmpty(string.Join("\n", clashes));
    }

    [Fact]
    public void A_namespace_belongs_to_the_area_of_its_longest_prefix()
    {
        LogEventRanges.AreaOf("Sluice.Recipes.Reminders.Jobs")!.Name.ShouldBe("reminders");
        LogEventRanges.AreaOf("Sluice.Jobs")!.Name.ShouldBe("jobs");
        LogEventRanges.AreaOf("Sluice.Hosting")!.Name.ShouldBe("hosting");
        LogEventRanges.AreaOf("Sluice.Core.Pipeline")!.Name.ShouldBe("core");
        LogEventRanges.AreaOf("Sluice.Connectors.Http.Ingest")!.Name.ShouldBe("http-ingest");
        LogEventRanges.AreaOf("Sluice.Connectors.Http")!.Name.ShouldBe("http");
        LogEventRanges.AreaOf("Sluice.Connectors.Kafka").ShouldBeNull();
    }

    [Fact]
    public void A_duplicate_names_both_methods_and_the_next_free_id_of_the_area()
    {
        // The clash this catalogue removed: the models log and the Postgres log both used 5001.
        var problems = LogIdCheck.Problems(
        [
            new("Sluice.Connectors.Postgres.PostgresLog.CreatedPublication", "Sluice.Connectors.Postgres", 5001),
            new("Sluice.Models.ModelsLog.Ran", "Sluice.Models", 5001),
        ]);
        problems.ShouldBe(
        [
            "Sluice.Models.ModelsLog.Ran: event id 5001 is also used by Sluice.Connectors.Postgres.PostgresLog.CreatedPublication and is outside its area, "
            + "area 'models' (Sluice.Models): new ids 23000-23999, shipped 11600-11601, 11700-11701; take 23000",
        ]);
    }

    [Fact]
    public void An_id_from_a_parallel_branch_is_told_where_to_go()
    {
        var problems = LogIdCheck.Problems(
        [
            new("Sluice.Connectors.ClickHouse.ClickHouseLog.Retrying", "Sluice.Connectors.ClickHouse", 6001),
            new("Sluice.Connectors.ClickHouse.ClickHouseLog.Merged", "Sluice.Connectors.ClickHouse", 12105),
            new("Sluice.Connectors.ClickHouse.ClickHouseLog.Other", "Sluice.Connectors.ClickHouse", 28000),
            new("Sluice.Connectors.Kafka.KafkaLog.Lost", "Sluice.Connectors.Kafka", 12200),
        ]);
        problems.ShouldBe(
        [
            "Sluice.Connectors.ClickHouse.ClickHouseLog.Merged: event id 12105 is outside its area, area 'clickhouse' (Sluice.Connectors.ClickHouse): new ids 28000-28999, shipped 6001-6004; take 28001",
            "Sluice.Connectors.Kafka.KafkaLog.Lost: event id 12200: namespace Sluice.Connectors.Kafka has no area in LogEventRanges; add one (the next free thousand)",
        ]);
    }

    [Fact]
    public void A_message_without_an_id_is_refused()
    {
        LogIdCheck.Problems([new("Sluice.Core.Pipeline.PipelineLog.X", "Sluice.Core.Pipeline", -1)])
            .ShouldBe(["Sluice.Core.Pipeline.PipelineLog.X: no event id; take 20000 of area 'core'"]);
    }

    /// <summary>Every Sluice assembly beside the tests (the engine, the CLI, the benchmarks), not the tests themselves.</summary>
    private static IEnumerable<LogIdCheck.Method> SluiceLoggerMessages()
    {
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "Sluice*.dll")
            .Where(f => !Path.GetFileName(f).StartsWith("Sluice.Tests", StringComparison.Ordinal))
            .Select(f => Assembly.Load(AssemblyName.GetAssemblyName(f)));
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        foreach (var assembly in assemblies)
        {
            foreach (var type in assembly.GetTypes())
            {
                foreach (var method in type.GetMethods(all))
                {
                    if (method.GetCustomAttribute<LoggerMessageAttribute>() is { } message)
                    {
                        yield return new($"{type.FullName}.{method.Name}", type.Namespace ?? "", message.EventId);
                    }
                }
            }
        }
    }
}

/// <summary>The catalogue's rules over a list of messages, as lines that say what to change.</summary>
internal static class LogIdCheck
{
    public sealed record Method(string Name, string Namespace, int Id);

    public static List<string> Problems(IReadOnlyList<Method> methods)
    {
        var problems = new List<string>();
        var used = methods.Select(m => m.Id).ToHashSet();
        var taken = new HashSet<int>(used);
        var first = new Dictionary<int, Method>();
        foreach (var m in methods.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            var area = LogEventRanges.AreaOf(m.Namespace);
            if (area is null)
            {
                problems.Add($"{m.Name}: event id {m.Id}: namespace {m.Namespace} has no area in LogEventRanges; add one (the next free thousand)");
                continue;
            }

            if (m.Id < 0)
            {
                problems.Add($"{m.Name}: no event id; take {NextFree(area, taken)} of area '{area.Name}'");
                continue;
            }

            var reasons = new List<string>();
            if (first.TryGetValue(m.Id, out var other)) { reasons.Add($"is also used by {other.Name}"); }
            else { first[m.Id] = m; }
            if (!area.Holds(m.Id)) { reasons.Add("is outside its area"); }
            if (reasons.Count > 0)
            {
                problems.Add($"{m.Name}: event id {m.Id} {string.Join(" and ", reasons)}, {area}; take {NextFree(area, taken)}");
            }
        }

        return problems;
    }

    /// <summary>The lowest id of the area's open range nobody uses; taken, so two problems never suggest the same one.</summary>
    private static int NextFree(LogArea area, HashSet<int> taken)
    {
        var id = area.Open.First;
        while (taken.Contains(id) && id < area.Open.Last) { id++; }
        taken.Add(id);
        return id;
    }
}
