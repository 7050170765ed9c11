using System.Globalization;
using System.Text.RegularExpressions;
using DuckDB.NET.Data;
using Npgsql;
using Sluice.Core.Config;
using Sluice.Core.Schema;
using Sluice.Models.Rules;
using static Sluice.Models.SqlDialect;

namespace Sluice.Models;

/// <summary>
/// Compiles every SQL model, in run order, against empty tables with the columns its inputs will have (a clean model's
/// declared outputs, an upstream model's compiled result plus the columns the engine adds, a source's known columns),
/// so that a misspelled column or a missing comma fails <c>sluice validate</c> with the model's file and line instead of
/// a run. DuckDB binds in an in-memory session; PostgreSQL in a transaction that is rolled back, under schemas of its
/// own (<c>sluice_bind_&lt;schema&gt;</c>) so the warehouse's tables are neither read nor locked. A model whose inputs
/// are unknown (a source the lake has not seen yet, an upstream model that did not compile) is not bound.
/// </summary>
public static partial class ModelBinder
{
    private const string BindPrefix = "sluice_bind_";

    private static readonly DateOnly AnyDay = new(2000, 1, 1);

    private static readonly (string Name, string Type)[] QuarantineColumns =
    [
        ("model", "VARCHAR"), ("source_table", "VARCHAR"), ("source_file", "VARCHAR"), ("source_row", "BIGINT"), ("rule", "VARCHAR"),
        ("column_name", "VARCHAR"), ("raw_values", "VARCHAR"), (CleanSpec.FileDateOutput, "DATE"),
    ];

    /// <summary>Binds on DuckDB; problems go to <paramref name="errors"/>. Returns how many models were bound.</summary>
    public static int BindDuckDb(ModelProject project, IReadOnlyDictionary<string, IReadOnlyList<(string Name, string Type)>> sources, string tempFolder, ConfigErrors errors)
    {
        ArgumentNullException.ThrowIfNull(project);
        using var db = Sluice.Lake.DuckDb.OpenMemory(tempFolder);
        return Bind(project, sources, errors, "duckdb",
            (name, columns) =>
            {
                Lake.LakeQueryEngine.Exec(db, $"CREATE SCHEMA IF NOT EXISTS {Quote(name[..name.IndexOf('.', StringComparison.Ordinal)])}");
                Lake.LakeQueryEngine.Exec(db, $"CREATE TABLE {QuoteName(name)} ({string.Join(", ", columns.Select(c => $"{Quote(c.Name)} {c.Type}"))})");
            },
            model =>
            {
                try
                {
                    using var cmd = db.CreateCommand();
                    cmd.CommandText = $"DESCRIBE {SqlDialect.DuckDb.Render(model, AnyDay)}";
                    using var r = cmd.ExecuteReader();
                    var list = new List<(string, string)>();
                    while (r.Read()) { list.Add((r.GetString(0), r.GetString(1))); }
                    return (list, null, 0);
                }
                catch (DuckDBException e)
                {
                    var line = DuckLine().Match(e.Message);
                    var message = string.Join(" ", e.Message.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("LINE ", StringComparison.Ordinal) && !l.StartsWith('^')));
                    return ([], message, line.Success ? int.Parse(line.Groups[1].Value, CultureInfo.InvariantCulture) : 0);
                }
            });
    }

    /// <summary>Binds on PostgreSQL in a transaction that is rolled back; problems go to <paramref name="errors"/>. Returns how many models were bound.</summary>
    public static async Task<int> BindPostgresAsync(ModelProject project, IReadOnlyDictionary<string, IReadOnlyList<(string Name, string Type)>> sources, NpgsqlConnectionStringBuilder settings, ConfigErrors errors, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(project);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(errors);
        var builder = new NpgsqlConnectionStringBuilder(settings.ConnectionString) { SearchPath = "public,sluice", Options = "-c jit=off" };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException)
        {
            errors.Add(project.Folder, 1, "(engine)", $"cannot reach PostgreSQL to bind the models ({e.Message}); settings come from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE");
            return 0;
        }

        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        foreach (var ddl in Postgres.PostgresWarehouse.StateDdl) { await ExecAsync(connection, tx, ddl, ct).ConfigureAwait(false); }
        var schemas = project.Models.Select(m => m.Name).Concat(sources.Keys).Append(project.Quarantine)
            .Select(n => n[..n.IndexOf('.', StringComparison.Ordinal)]).Distinct(StringComparer.Ordinal).ToList();
        foreach (var s in schemas) { await ExecAsync(connection, tx, $"CREATE SCHEMA {Quote(BindPrefix + s)}", ct).ConfigureAwait(false); }
        string Rename(string sql) => schemas.Aggregate(sql, (text, s) => SqlText.ReplaceWord(text, s, (blank, end) => end < blank.Length && blank[end] == '.' ? Quote(BindPrefix + s) : null));
        string Bound(string name) => Rename(QuoteName(name).Replace("\"", "", StringComparison.Ordinal));

        // Bind's callbacks are synchronous (Npgsql's synchronous calls): off the socket thread the awaits above may
        // have left this on, where they would wait for the very thread they block (docs/ARCHITECTURE.md).
        await Core.IO.InlineSocketCompletions.LeaveSocketThreadAsync().ConfigureAwait(false);
        // Each step under a savepoint: a model that does not compile must not abort the binding of the others.
        var bound = Bind(project, sources, errors, "postgres",
            (name, columns) =>
            {
                using var create = new NpgsqlCommand($"CREATE TABLE {Bound(name)} ({string.Join(", ", columns.Select(c => $"{Quote(c.Name)} {c.Type}"))})", connection, tx);
                create.ExecuteNonQuery();
            },
            model =>
            {
                var statement = $"CREATE TEMP TABLE _bind AS {Rename(SqlDialect.Postgres.Render(model, AnyDay))} WITH NO DATA";
                tx.Save("bind");
                try
                {
                    using (var cmd = new NpgsqlCommand(statement, connection, tx)) { cmd.ExecuteNonQuery(); }
                    var list = new List<(string, string)>();
                    using (var cmd = new NpgsqlCommand("SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'pg_temp._bind'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", connection, tx))
                    using (var r = cmd.ExecuteReader())
                    {
                        while (r.Read()) { list.Add((r.GetString(0), r.GetString(1))); }
                    }

                    tx.Rollback("bind");
                    return (list, null, 0);
                }
                catch (PostgresException e)
                {
                    tx.Rollback("bind");
                    var line = e.Position > 0 ? statement.AsSpan(0, Math.Min(e.Position - 1, statement.Length)).Count('\n') + 1 : 0;
                    return ([], e.MessageText.Replace(BindPrefix, "", StringComparison.Ordinal), line);
                }
            });
        await tx.RollbackAsync(ct).ConfigureAwait(false);
        return bound;
    }

    /// <summary>The columns of the project's sources the lake already has, typed for the engine (the partition column included).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<(string Name, string Type)>> LakeSources(Lake.LakeStore lake, ModelProject project, bool postgres)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(project);
        var found = new Dictionary<string, IReadOnlyList<(string Name, string Type)>>(StringComparer.Ordinal);
        foreach (var name in project.Sources)
        {
            if (lake.Table(name) is not { } table) { continue; }
            var columns = table.Columns.Select(c => (c.Name, postgres ? c.PostgresType() : c.Type.DuckDbType())).ToList();
            if (table.IsPartitioned) { columns.Add((table.PartitionKey, postgres ? table.PartitionType.PostgresType() : table.PartitionType.DuckDbType())); }
            found[name] = columns;
        }

        return found;
    }

    private static int Bind(
        ModelProject project, IReadOnlyDictionary<string, IReadOnlyList<(string Name, string Type)>> sources, ConfigErrors errors, string engine,
        Action<string, IReadOnlyList<(string Name, string Type)>> create, Func<ModelDefinition, (List<(string Name, string Type)> Columns, string? Error, int Line)> describe)
    {
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, columns) in sources.Where(s => project.Models.All(m => m.Name != s.Key)))
        {
            create(name, columns);
            known.Add(name);
        }

        if (project.HasCleanModels)
        {
            create(project.Quarantine, QuarantineColumns);
            known.Add(project.Quarantine);
        }

        var bound = 0;
        foreach (var model in project.Models)
        {
            if (model.Kind == ModelKind.Clean)
            {
                create(model.Name, CleanSqlBuilder.OutputColumns(model.Clean!));
                known.Add(model.Name);
                continue;
            }

            if (!model.Dependencies.Concat(model.Sources).All(known.Contains)) { continue; }
            var (columns, error, line) = describe(model);
            if (error is not null)
            {
                errors.Add(model.File, line > 0 ? line : model.SqlLine, "(sql)", $"does not compile on {engine}: {error}");
                continue;
            }

            create(model.Name, Output(model, columns));
            known.Add(model.Name);
            bound++;
        }

        return bound;
    }

    /// <summary>The model's table: its result, with the columns the engine fills for its kind.</summary>
    private static List<(string Name, string Type)> Output(ModelDefinition model, List<(string Name, string Type)> result)
    {
        if (model.Kind == ModelKind.Snapshot)
        {
            var spec = model.Snapshot!;
            var time = spec.Strategy == SnapshotStrategy.Timestamp && result.FirstOrDefault(c => c.Name == spec.UpdatedAt) is { Name: not null } u ? u.Type : "DATE";
            var meta = SnapshotSql.MetaColumns(spec, time);
            return meta.Where(m => m.Name == spec.SurrogateKey).Concat(result).Concat(meta.Where(m => m.Name != spec.SurrogateKey)).ToList();
        }

        return model.Kind == ModelKind.Incremental && model.Incremental!.SurrogateKey is { } sk ? [(sk, "BIGINT"), .. result] : result;
    }

    private static async Task ExecAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    [GeneratedRegex(@"LINE (\d+):", RegexOptions.CultureInvariant)]
    private static partial Regex DuckLine();
}
