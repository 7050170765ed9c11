using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Transforms.HashPii;

/// <summary>
/// Options of the <c>hash_pii</c> step: <c>fields</c> (columns to hash), <c>tables</c>, and where the HMAC key is:
/// <c>key_env</c> (an environment variable holding it) or <c>key_file</c> (a file, relative to the recipe folder), never
/// the recipe itself. With neither, the data folder's key is used, the one HTTP ingest hashes <c>pii: true</c> fields
/// with (<c>SLUICE_PII_KEY</c>, else <c>&lt;data&gt;/keys/pii.key</c>), so hashes of the same value join across both.
/// </summary>
public sealed class HashPiiOptions
{
    public required TableSelection Tables { get; init; }

    public required IReadOnlyList<string> Fields { get; init; }

    public string? KeyEnv { get; init; }

    public string? KeyFile { get; init; }

    public static HashPiiOptions Parse(ConfigMap map, RecipeContext recipe)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(recipe);
        map.Declare("key", "text", null, "Refused: a key is never written in the recipe (it would be in version control); name an environment variable with `key_env` or a file with `key_file`.");
        if (map.Has("key"))
        {
            map.Error("key", "hash_pii: a key is never written in the recipe (it would be in version control); name an environment variable with key_env or a file with key_file");
        }

        var fields = map.StringList("fields", doc: "The columns hashed (HMAC-SHA256).");
        if (fields.Count == 0) { map.Error("fields", "hash_pii: missing required field: the columns to hash"); }
        var env = map.String("key_env", doc: "An environment variable holding the HMAC key. With neither this nor `key_file`, the data folder's key (`SLUICE_PII_KEY`, else `<data>/keys/pii.key`), the one HTTP ingest hashes `pii: true` fields with, so hashes of one value join across both.");
        var file = map.String("key_file", doc: "A file holding the HMAC key, relative to the recipe folder (never the key itself in the recipe).");
        if (env is not null && file is not null) { map.Error("key_file", "hash_pii: give key_env or key_file, not both"); }
        return new HashPiiOptions
        {
            Tables = TableSelection.Parse(map),
            Fields = fields,
            KeyEnv = env,
            KeyFile = file is null ? null : Path.GetFullPath(Path.Combine(recipe.Folder, file)),
        };
    }
}
