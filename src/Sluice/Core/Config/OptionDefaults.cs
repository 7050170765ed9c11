namespace Sluice.Core.Config;

/// <summary>
/// An options class's defaults: an instance holding only its property initialisers, so a parser falls back to
/// <c>Default.Prop</c> and each default is written once, where the property is declared. Made by reflection because
/// <c>new()</c> would have to set the class's <c>required</c> members, which have no default (they stay unset here).
/// </summary>
public static class OptionDefaults
{
    public static T Of<T>()
        where T : class => Activator.CreateInstance<T>();
}
