using System.Globalization;
using System.Text;
using Sluice.Connectors.Http.Ingest;
using Sluice.Core;
using Sluice.Core.Config;
using Sluice.Core.Pipeline;
using Sluice.Core.Recipes;
using Sluice.Core.Schema;

namespace Sluice.Transforms.HashPii;

/// <summary>The <c>hash_pii</c> step type.</summary>
public sealed class HashPiiStepType : IStepType
{
    public string Name => "hash_pii";

    public IStepFactory Parse(ConfigMap options, RecipeContext recipe) => new Factory(HashPiiOptions.Parse(options, recipe));

    private sealed class Factory(HashPiiOptions options) : IStepFactory, IShapesBatches
    {
        /// <summary>A table without a field passes as it is, so a field is a mistake only when no table has it.</summary>
        public BatchShape Shape(BatchShape input, ShapeProblems problems)
        {
            options.Tables.Check(input, problems, "hash_pii");
            var use = new ColumnUse(problems, "hash_pii");
            var shape = input.Edit(options.Tables.Tables, table =>
            {
                foreach (var field in options.Fields)
                {
                    if (use.Use(table, "fields", field) && table.Find(field) is { } column) { table = table.With(column with { Type = Core.Schema.FieldType.String }); }
                }

                return table;
            });
            use.Done();
            return shape;
        }

        public IBatchStep Create(IEngineServices services) => new HashPiiStep(options, Hasher(options, services.Data));
    }

    /// <summary>The key: refused at start when the named variable is unset or the file is unreadable or empty (a wrong key would hash quietly into values that join with nothing).</summary>
    public static PiiHasher Hasher(HashPiiOptions options, DataDirectory data)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.KeyEnv is { } name)
        {
            return Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
                ? new PiiHasher(Encoding.UTF8.GetBytes(value))
                : throw new FatalException($"hash_pii: the key variable {name} (key_env) is not set; set it to the HMAC key, or remove key_env to use the data folder's key.");
        }

        if (options.KeyFile is { } path)
        {
            byte[] key;
            try
            {
                key = File.ReadAllBytes(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new FatalException($"hash_pii: cannot read the key file {path} (key_file): {e.Message}");
            }

            return key.Length > 0 ? new PiiHasher(key) : throw new FatalException($"hash_pii: the key file {path} (key_file) is empty.");
        }

        return PiiHasher.ForDataFolder(data);
    }
}

/// <summary>
/// Replaces the named columns of the selected tables by their keyed hash (<see cref="PiiHasher"/>: HMAC-SHA256, 16 bytes
/// as hex): equal values give equal hashes, NULL stays NULL. A number or other non-text value is hashed as its invariant
/// text and the column becomes text. A table without the column passes as it is.
/// </summary>
public sealed class HashPiiStep(HashPiiOptions options, PiiHasher hasher) : IBatchStep
{
    public ValueTask<RecordBatch> ApplyAsync(RecordBatch batch, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(batch);
        return ValueTask.FromResult(batch with { Tables = batch.Tables.Select(t => options.Tables.Takes(t) ? Apply(t) : t).ToList() });
    }

    public ColumnBatch Apply(ColumnBatch table)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(options);
        var edit = new TableEdit(table);
        foreach (var field in options.Fields)
        {
            var at = table.Schema.IndexOf(field);
            if (at < 0) { continue; }
            var hashed = new string?[table.Count];
            var values = table.Columns[at];
            for (var row = 0; row < table.Count; row++)
            {
                hashed[row] = (table.Verbatim(at)?[row] ?? values.GetValue(row)) switch
                {
                    null => null,
                    string s => hasher.Hash(s),
                    DateTime t => hasher.Hash(RowJson.Timestamp(t)),
                    var v => hasher.Hash(Convert.ToString(v, CultureInfo.InvariantCulture) ?? ""),
                };
            }

            edit.Set(field, FieldType.String, hashed);
        }

        return edit.Build();
    }
}
