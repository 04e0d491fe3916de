using Npgsql;

namespace KvWorker.Storage.Postgres;

/// <summary>
/// Applies the numbered scripts embedded under Schema/ that the database has
/// not seen yet, in one transaction under an advisory lock, so replicas that
/// start together neither race nor apply a script twice.
/// </summary>
public static class SchemaMigrator
{
    private const long AdvisoryLockKey = 0x6B76_776F_726B; // "kvwork"

    public static IReadOnlyList<(string Name, string Sql)> Scripts { get; } = LoadScripts();

    public static async Task MigrateAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        const string lockSql = "SELECT pg_advisory_xact_lock($1)";
        await using (var command = new NpgsqlCommand(lockSql, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = AdvisoryLockKey });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        const string createSql = """
            CREATE TABLE IF NOT EXISTS kv_schema_migrations (
                name       text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())
            """;
        await using (var command = new NpgsqlCommand(createSql, connection, transaction))
            await command.ExecuteNonQueryAsync(cancellationToken);

        const string applied = "SELECT name FROM kv_schema_migrations";
        var done = new HashSet<string>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand(applied, connection, transaction))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken)) done.Add(reader.GetString(0));
        }

        foreach (var (name, sql) in Scripts.Where(script => !done.Contains(script.Name)))
        {
            await using (var command = new NpgsqlCommand(sql, connection, transaction))
                await command.ExecuteNonQueryAsync(cancellationToken);
            const string record = "INSERT INTO kv_schema_migrations (name) VALUES ($1)";
            await using var recordCommand = new NpgsqlCommand(record, connection, transaction);
            recordCommand.Parameters.Add(new NpgsqlParameter { Value = name });
            await recordCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    private static IReadOnlyList<(string, string)> LoadScripts()
    {
        var assembly = typeof(SchemaMigrator).Assembly;
        const string prefix = "KvWorker.Storage.Postgres.Schema.";
        return assembly.GetManifestResourceNames()
            .Where(name => name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(".sql", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(name =>
            {
                using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!);
                return (name[prefix.Length..], reader.ReadToEnd());
            })
            .ToList();
    }
}
