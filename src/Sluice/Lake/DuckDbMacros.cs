namespace Sluice.Lake;

/// <summary>
/// Functions every DuckDB session of Sluice offers beyond DuckDB's own, so SQL models can use them on the embedded
/// warehouse exactly as on PostgreSQL (where the model engine installs the same functions in the <c>sluice</c> schema).
/// </summary>
public static class DuckDbMacros
{
    /// <summary>
    /// <c>title_case(text)</c>: lower case, then the first letter of every word upper case, where a word starts the text
    /// or follows a space, a hyphen or an apostrophe (<c>saint-étienne</c> -> <c>Saint-Étienne</c>, <c>l'isle</c> -> <c>L'Isle</c>).
    /// DuckDB has no <c>initcap</c>, and PostgreSQL's differs on digits and punctuation, so both engines use this definition.
    /// </summary>
    public const string TitleCase =
        "CREATE OR REPLACE MACRO title_case(s) AS array_to_string(list_transform(string_split(lower(s), ' '), " +
        "a -> array_to_string(list_transform(string_split(a, '-'), " +
        "b -> array_to_string(list_transform(string_split(b, ''''), c -> upper(c[1]) || c[2:]), '''')), '-')), ' ')";

    public static void Install(DuckDB.NET.Data.DuckDBConnection connection) => LakeQueryEngine.Exec(connection, TitleCase);
}
