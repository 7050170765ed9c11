using System.Reflection;
using Sluice.Core.Recipes;
using Sluice.Recipes;

namespace Sluice.Tests.Core;

/// <summary>
/// The engine's layers (docs/ARCHITECTURE.md, "Layout"): <c>Sluice.Core</c> is the bottom layer and names no type of the
/// engine above it (hosting, jobs, serving, the lake, connectors), and the engine assembly holds and names no recipe
/// code. The references are read from the compiled assembly (signatures, attributes and every method body's IL), so a
/// fully qualified name or a <c>var</c> cannot hide one.
/// </summary>
public sealed class LayeringTests
{
    private static readonly Assembly Engine = typeof(Components).Assembly;

    [Fact]
    public void Core_references_no_type_of_the_layers_above_it()
    {
        var problems = TypeReferences.Of(Engine)
            .Where(r => InNamespace(r.From.Namespace, "Sluice.Core") && IsSluice(r.Target.Namespace) && !InNamespace(r.Target.Namespace, "Sluice.Core"))
            .Select(r => $"{r.From.FullName} references {r.Target.FullName}")
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

        problems.ShouldBeEmpty(string.Join("\n", problems));
    }

    [Fact]
    public void The_engine_assembly_references_no_recipe_code()
    {
        Engine.GetReferencedAssemblies().Select(a => a.Name).ShouldNotContain("Sluice.Recipes");
        var inEngine = Engine.GetTypes().Where(t => InNamespace(t.Namespace, "Sluice.Recipes")).Select(t => t.FullName).ToList();
        inEngine.ShouldBeEmpty(string.Join("\n", inEngine));
        var named = TypeReferences.Of(Engine).Where(r => InNamespace(r.Target.Namespace, "Sluice.Recipes"))
            .Select(r => $"{r.From.FullName} references {r.Target.FullName}").Distinct(StringComparer.Ordinal).ToList();
        named.ShouldBeEmpty(string.Join("\n", named));
    }

    [Fact]
    public void The_recipes_own_components_are_registered_by_the_recipe_project_not_the_engine()
    {
        var engine = Components.Create();
        engine.Step("engagement_enrich").ShouldBeNull();
        engine.Step("attorney_events").ShouldBeNull();
        engine.Sink("reminder_store").ShouldBeNull();
        engine.Job("send_reminders").ShouldBeNull();
        engine.PlugIn<Sluice.Connectors.Pull.IPullMapper>().ShouldBeNull();

        var all = RecipeComponents.Create();
        foreach (var type in new object?[] { all.Step("engagement_enrich"), all.Step("attorney_events"), all.Sink("reminder_store"), all.Job("send_reminders"), all.PlugIn<Sluice.Connectors.Pull.IPullMapper>() })
        {
            type.ShouldNotBeNull();
            type.GetType().Assembly.GetName().Name.ShouldBe("Sluice.Recipes");
        }
    }

    [Fact]
    public void The_scan_sees_references_made_only_inside_method_bodies()
    {
        // A reference in a body only (a local, a call, typeof) is found as well as one in a signature.
        var found = TypeReferences.Of(typeof(LayeringTests).Assembly).Where(r => r.From == typeof(BodyOnly)).Select(r => r.Target).ToList();
        found.ShouldContain(typeof(ComponentRegistry));
        found.ShouldContain(typeof(Sluice.Lake.LakeStore));
    }

    private static class BodyOnly
    {
        public static object Use() => (new ComponentRegistry(), typeof(Sluice.Lake.LakeStore));
    }

    private static bool IsSluice(string? ns) => InNamespace(ns, "Sluice");

    private static bool InNamespace(string? ns, string prefix) =>
        ns is not null && (ns == prefix || ns.StartsWith(prefix + ".", StringComparison.Ordinal));
}

/// <summary>Which types each type of an assembly references: base types, members' signatures, attributes, and the tokens of every method body's IL.</summary>
internal static class TypeReferences
{
    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, System.Reflection.Emit.OpCode> OpCodes = typeof(System.Reflection.Emit.OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (System.Reflection.Emit.OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    public sealed record Reference(Type From, Type Target);

    public static IEnumerable<Reference> Of(Assembly assembly)
    {
        foreach (var type in assembly.GetTypes())
        {
            var seen = new HashSet<Type>();
            foreach (var target in Direct(type))
            {
                foreach (var t in Expand(target))
                {
                    if (seen.Add(t)) { yield return new Reference(type, t); }
                }
            }
        }
    }

    private static IEnumerable<Type> Direct(Type type)
    {
        if (type.BaseType is { } b) { yield return b; }
        foreach (var i in type.GetInterfaces()) { yield return i; }
        foreach (var a in type.GetCustomAttributesData()) { yield return a.AttributeType; }
        foreach (var f in type.GetFields(All)) { yield return f.FieldType; }
        foreach (var p in type.GetProperties(All)) { yield return p.PropertyType; }
        foreach (var e in type.GetEvents(All)) { if (e.EventHandlerType is { } h) { yield return h; } }
        var methods = type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All));
        foreach (var m in methods)
        {
            if (m is MethodInfo mi) { yield return mi.ReturnType; }
            foreach (var p in m.GetParameters()) { yield return p.ParameterType; }
            foreach (var a in m.GetCustomAttributesData()) { yield return a.AttributeType; }
            foreach (var t in InBody(type, m)) { yield return t; }
        }
    }

    /// <summary>The types, fields and methods the IL names (their declaring types and signatures).</summary>
    private static IEnumerable<Type> InBody(Type type, MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null) { yield break; }
        var typeArgs = type.IsGenericType ? type.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var i = 0;
        while (i < il.Length)
        {
            short code = il[i++];
            if (code == 0xFE) { code = (short)(0xFE00 | il[i++]); }
            var op = OpCodes[code];
            var size = Operand(op.OperandType, il, i);
            if (op.OperandType is System.Reflection.Emit.OperandType.InlineType or System.Reflection.Emit.OperandType.InlineField
                or System.Reflection.Emit.OperandType.InlineMethod or System.Reflection.Emit.OperandType.InlineTok)
            {
                var member = method.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                foreach (var t in Named(member)) { yield return t; }
            }

            i += size;
        }
    }

    private static IEnumerable<Type> Named(MemberInfo? member)
    {
        switch (member)
        {
            case Type t:
                yield return t;
                break;
            case FieldInfo f:
                if (f.DeclaringType is { } fd) { yield return fd; }
                yield return f.FieldType;
                break;
            case MethodBase m:
                if (m.DeclaringType is { } md) { yield return md; }
                if (m is MethodInfo mi)
                {
                    yield return mi.ReturnType;
                    if (mi.IsGenericMethod) { foreach (var a in mi.GetGenericArguments()) { yield return a; } }
                }

                foreach (var p in m.GetParameters()) { yield return p.ParameterType; }
                break;
        }
    }

    private static int Operand(System.Reflection.Emit.OperandType type, byte[] il, int at) => type switch
    {
        System.Reflection.Emit.OperandType.InlineNone => 0,
        System.Reflection.Emit.OperandType.ShortInlineBrTarget or System.Reflection.Emit.OperandType.ShortInlineI or System.Reflection.Emit.OperandType.ShortInlineVar => 1,
        System.Reflection.Emit.OperandType.InlineVar => 2,
        System.Reflection.Emit.OperandType.InlineI8 or System.Reflection.Emit.OperandType.InlineR => 8,
        System.Reflection.Emit.OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
        _ => 4,
    };

    /// <summary>A type and what it is built from: element types, generic arguments and definitions.</summary>
    private static IEnumerable<Type> Expand(Type type)
    {
        if (type.IsGenericParameter) { yield break; }
        if (type.HasElementType)
        {
            foreach (var t in Expand(type.GetElementType()!)) { yield return t; }
            yield break;
        }

        yield return type;
        if (type.IsConstructedGenericType)
        {
            yield return type.GetGenericTypeDefinition();
            foreach (var a in type.GetGenericArguments())
            {
                foreach (var t in Expand(a)) { yield return t; }
            }
        }
    }
}
