using EvolveDb;
using EvolveDb.Configuration;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>
/// The schema as definitions, applied with Evolve: tables in versioned
/// migrations (<c>Schema/V*__*.sql</c>, each applied once), and each SQL
/// function in a file of its own (<c>Schema/R__*.sql</c>), applied again
/// whenever its text changes. All of it runs in one transaction under Evolve's
/// advisory lock, so replicas that start together neither race nor apply a
/// script twice; the later ones find nothing left to do.
/// </summary>
public static class PostgresSchema
{
    /// <summary>Evolve's record of what it applied, beside the kv_* tables.</summary>
    public const string ChangelogTable = "kv_schema_changelog";

    private const string ResourcePrefix = "KvWorker.Postgres.Schema.";

    /// <summary>The migration scripts' file names, versioned first.</summary>
    public static IReadOnlyList<string> Scripts { get; } = typeof(PostgresSchema).Assembly.GetManifestResourceNames()
        .Where(name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal))
        .Select(name => name[ResourcePrefix.Length..])
        .OrderBy(name => name[0] == 'R').ThenBy(name => name, StringComparer.Ordinal)
        .ToList();

    /// <summary>The text of one of <see cref="Scripts"/>.</summary>
    public static string Script(string name)
    {
        using var stream = typeof(PostgresSchema).Assembly.GetManifestResourceStream(ResourcePrefix + name)
            ?? throw new ArgumentException($"no schema script is named {name}", nameof(name));
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Brings the database up to date; <paramref name="log"/> receives Evolve's progress lines.</summary>
    public static async Task MigrateAsync(NpgsqlDataSource dataSource, Action<string> log, CancellationToken cancellationToken)
    {
        var changelogSchema = await ChangelogSchemaAsync(dataSource, cancellationToken);
        await RefuseNewerSchemaAsync(dataSource, changelogSchema, cancellationToken);
        // Evolve is synchronous: keep it off the caller's thread.
        await Task.Run(() =>
        {
            using var connection = dataSource.CreateConnection();
            var evolve = new Evolve(connection, log)
            {
                EmbeddedResourceAssemblies = [typeof(PostgresSchema).Assembly],
                EmbeddedResourceFilters = [ResourcePrefix],
                MetadataTableName = ChangelogTable,
                MetadataTableSchema = changelogSchema,
                TransactionMode = TransactionKind.CommitAll,
                EnableClusterMode = true,
                IsEraseDisabled = true,
                // No ${...} substitution: the scripts are plain SQL.
                PlaceholderPrefix = "\u0001{",
                // An upgrade may rewrite a large table (a column's collation, an index) and wait for its
                // lock: no limit per statement (Npgsql's 30 s otherwise), an hour for the whole upgrade
                // (the transaction scope's one minute otherwise), rather than failing every start-up.
                CommandTimeout = 0,
                AmbientTransactionTimeout = 3600,
            };
            evolve.Migrate();
        }, cancellationToken);
    }

    /// <summary>
    /// Stops a release from starting on a database a newer release upgraded: Evolve would apply this
    /// release's function files over the newer ones (their text differs) and carry on, leaving the
    /// newer replicas with functions that do not match their tables.
    /// </summary>
    private static async Task RefuseNewerSchemaAsync(NpgsqlDataSource dataSource, string changelogSchema, CancellationToken cancellationToken)
    {
        // The schema name comes from the catalog (ChangelogSchemaAsync); a table name cannot be a parameter.
        var changelog = $"\"{changelogSchema.Replace("\"", "\"\"")}\".{ChangelogTable}";
        await using (var exists = dataSource.CreateCommand("SELECT to_regclass($1) IS NOT NULL"))
        {
            exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = changelog });
            if (await exists.ExecuteScalarAsync(cancellationToken) is not true) return; // a new database
        }

        await using var command = dataSource.CreateCommand(
            $"SELECT name FROM {changelog} WHERE name ~ '^V[0-9_]+__.*[.]sql$' AND success AND NOT name = ANY($1) ORDER BY id");
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. Scripts.Where(name => name[0] == 'V')] });
        var unknown = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) unknown.Add(reader.GetString(0));
        if (unknown.Count > 0)
            throw new PostgresStartupException(
                $"the database schema was upgraded by a newer KvWorker release (it holds {string.Join(", ", unknown)}, " +
                "which this release does not know): run that release or a later one; replicas of different releases must not share a database");
    }

    /// <summary>
    /// Where the changelog is kept: beside the tables, in <c>current_schema()</c> (the first schema on
    /// the search path that exists, the role's own when it has one), unless an earlier start left it in
    /// another schema on the path. Evolve's own choice, the first name on the search path but
    /// <c>$user</c>, is <c>public</c> on the default path, where a role with a schema of its own may
    /// create nothing (PostgreSQL 15's default for a role that does not own the database).
    /// </summary>
    private static async Task<string> ChangelogSchemaAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT coalesce(
                (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relname = $1 AND n.nspname = ANY (current_schemas(false))
                  ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1),
                current_schema())::text
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ChangelogTable });
        return await command.ExecuteScalarAsync(cancellationToken) as string
            ?? throw new PostgresStartupException("no schema on the PostgreSQL search_path exists: create one, or set search_path to one that does");
    }
}
