using System.Text.RegularExpressions;
using Sluice.Core.Config;
using Sluice.Core.Recipes;

namespace Sluice.Recipes.Reminders;

/// <summary>How <c>client_id</c> is kept at rest. <c>attorney_email</c> is always encrypted: the reminder is mailed to it.</summary>
public enum ClientIdProtection
{
    /// <summary>AES-GCM ciphertext next to the keyed hash: the mail can name the client.</summary>
    Encrypt,

    /// <summary>The keyed hash only: the client id is never stored; the mail names the client by its hash.</summary>
    Hash,
}

/// <summary>
/// Where the recipe keeps its events, raw payloads and sent log, and how personal data is protected: the recipe's
/// <c>store.yaml</c>, read by every component of the recipe (the pull sources, the push step and sink, the job), so
/// all of them agree. Validated at load.
/// </summary>
public sealed partial class ReminderStoreOptions
{
    /// <summary>The defaults, written once in the property initialisers: <see cref="Parse"/> falls back to them and the reference (docs/reference) shows them.</summary>
    private static readonly ReminderStoreOptions Default = new();

    /// <summary>The store file a job or source reads when its <c>store:</c> names none.</summary>
    public const string DefaultFile = "store.yaml";

    /// <summary>The lake zone of the tables in the embedded warehouse: <c>reminders.attorney_events</c>, ...</summary>
    public string Zone { get; init; } = "reminders";

    /// <summary>When set, the tables live in this PostgreSQL schema instead of the lake (server from <c>PG*</c> variables). Default: unset, the lake.</summary>
    public string? PostgresSchema { get; init; }

    /// <summary>The environment variable holding the 32-byte master key, base64 or hex.</summary>
    public string KeyEnv { get; init; } = "SLUICE_REMINDER_KEY";

    /// <summary>When the variable is unset: the key file, relative to the data folder, created with 32 random bytes (mode 0600) on first use.</summary>
    public string KeyFile { get; init; } = "keys/reminders.key";

    /// <summary>How <c>client_id</c> is kept at rest.</summary>
    public ClientIdProtection ClientId { get; init; } = ClientIdProtection.Encrypt;

    /// <summary>The file the options came from, for messages.</summary>
    public string File { get; init; } = "";

    public bool UsesPostgres => PostgresSchema is not null;

    /// <summary>Reads the store file a component names under <c>store:</c> (<see cref="DefaultFile"/> when it names none).</summary>
    public static ReminderStoreOptions FromKey(ConfigMap owner, RecipeContext recipe, string doc)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return Load(recipe, owner.String("store", DefaultFile, doc: doc) ?? DefaultFile, owner, "store");
    }

    /// <summary>Reads <paramref name="fileName"/> in the recipe's folder (reported through the recipe's errors; defaults when absent).</summary>
    public static ReminderStoreOptions Load(RecipeContext recipe, string fileName, ConfigMap owner, string ownerKey)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(owner);
        var path = Path.Combine(recipe.Folder, fileName);
        var keyFile = $"keys/{recipe.Name}.key";
        if (!System.IO.File.Exists(path))
        {
            owner.Error(ownerKey, $"store file '{fileName}' not found in {recipe.Folder}");
            return new ReminderStoreOptions { KeyFile = keyFile, File = fileName };
        }

        var map = ConfigMap.Load(path, recipe.Errors);
        return map is null ? new ReminderStoreOptions { KeyFile = keyFile, File = fileName } : Parse(map, keyFile);
    }

    public static ReminderStoreOptions Parse(ConfigMap map, string defaultKeyFile)
    {
        ArgumentNullException.ThrowIfNull(map);
        var lake = map.Map("lake", doc: "Keep the reminders in the embedded warehouse (the lake).");
        var zone = lake?.String("zone", Default.Zone, doc: "The lake zone of the tables in the embedded warehouse: `reminders.attorney_events`, ...") ?? Default.Zone;
        lake?.Done();
        var postgres = map.Map("postgres", doc: "Keep the reminders in Postgres instead of the lake.");
        var schema = postgres?.RequiredString("schema", doc: "The Postgres schema of the reminder tables.");
        postgres?.Done();
        if (lake is not null && postgres is not null)
        {
            map.Error("postgres", "choose one store: 'lake' (the embedded warehouse) or 'postgres'");
        }

        var privacy = map.Map("privacy", doc: "How personal fields are kept at rest.");
        var options = new ReminderStoreOptions
        {
            Zone = zone,
            PostgresSchema = schema,
            KeyEnv = privacy?.String("key_env", Default.KeyEnv, doc: "The environment variable holding the 32-byte master key, base64 or hex.") ?? Default.KeyEnv,
            KeyFile = privacy?.String("key_file", defaultKeyFile, doc: "When the variable is unset: the key file, relative to the data folder, created with 32 random bytes (mode 0600) on first use.") ?? defaultKeyFile,
            ClientId = privacy?.Enum("client_id", Default.ClientId, doc: "How `client_id` is kept at rest.") ?? Default.ClientId,
            File = map.File,
        };
        if (privacy is not null)
        {
            var email = privacy.String("attorney_email", "encrypt", doc: "How `attorney_email` is kept at rest: `encrypt` only (reminders are mailed to it).");
            if (email != "encrypt")
            {
                privacy.Error("attorney_email", $"must be encrypt: reminders are e-mailed to it, so it must be readable by the job (got '{email}')");
            }

            privacy.Done();
        }

        map.Done();
        foreach (var (key, value) in new[] { ("lake.zone", options.Zone), ("postgres.schema", options.PostgresSchema) })
        {
            if (value is { Length: > 0 } && !Identifier().IsMatch(value)) { map.Error(key, $"'{value}' must be letters, digits and '_'"); }
        }

        if (Path.IsPathRooted(options.KeyFile) || options.KeyFile.Contains("..", StringComparison.Ordinal))
        {
            map.Error("privacy.key_file", $"must be a path inside the data folder, got '{options.KeyFile}'");
        }

        return options;
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Identifier();
}
