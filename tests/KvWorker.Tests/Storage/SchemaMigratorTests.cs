using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>The schema as definitions: Evolve's migrations, replicas starting together, and upgrading a database made by the earlier scripts.</summary>
public sealed class SchemaMigratorTests
{
    private static async Task WithEmptyDatabaseAsync(Func<NpgsqlDataSource, Task> test)
    {
        var name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
        var connectionString = await TestServers.CreateEmptyDatabaseAsync(name);
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            await test(dataSource);
        }
        finally
        {
            await TestServers.DropDatabaseAsync(name);
        }
    }

    private static Task MigrateAsync(NpgsqlDataSource dataSource) => PostgresSchema.MigrateAsync(dataSource, _ => { }, CancellationToken.None);

    private static async Task<List<string>> AppliedAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand($"SELECT name FROM {PostgresSchema.ChangelogTable} WHERE success AND name LIKE '%.sql' ORDER BY id");
        var applied = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) applied.Add(reader.GetString(0));
        return applied;
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public Task Replicas_starting_together_apply_each_script_exactly_once() => WithEmptyDatabaseAsync(async dataSource =>
    {
        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => MigrateAsync(dataSource))));
        await MigrateAsync(dataSource); // and again, later

        var applied = await AppliedAsync(dataSource);
        Assert.Equal(PostgresSchema.Scripts.Order(), applied.Order());
        Assert.Contains("V1__tables.sql", applied);
        Assert.Contains("R__kv_purge_expired.sql", applied);
    });

    [Fact]
    public Task A_function_file_whose_text_changed_is_applied_again() => WithEmptyDatabaseAsync(async dataSource =>
    {
        await MigrateAsync(dataSource);
        // As if R__kv_purge_expired.sql had been edited since it was applied.
        await ScalarAsync(dataSource, $"UPDATE {PostgresSchema.ChangelogTable} SET checksum = 'edited' WHERE name = 'R__kv_purge_expired.sql'");

        await MigrateAsync(dataSource);

        var applied = await AppliedAsync(dataSource);
        Assert.Equal(2, applied.Count(name => name == "R__kv_purge_expired.sql"));
        Assert.Single(applied, name => name == "R__kv_lock_namespaces.sql");
        Assert.Equal(1, await ScalarAsync(dataSource, "SELECT count(*) FROM pg_proc WHERE proname = 'kv_purge_expired'"));
    });

    [Fact]
    public Task A_database_made_by_the_earlier_scripts_upgrades_in_place_keeping_its_data() => WithEmptyDatabaseAsync(async dataSource =>
    {
        // The earlier numbered scripts left: the tables of V1 (they are those tables), the runner's
        // record of its four scripts, functions with the earlier signatures (their bodies do not
        // matter: they are all replaced), and data, including an identity recorded without what it identified.
        var tables = PostgresSchema.Script("V1__tables.sql");
        const string earlier = """
            CREATE TABLE kv_schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO kv_schema_migrations (name) VALUES ('001_tables.sql'), ('002_functions.sql'), ('003_exactly_once_and_events.sql'), ('004_group_commit.sql');
            CREATE FUNCTION kv_set(text, text, text, bigint, double precision, bigint, bigint, double precision[], text) RETURNS void LANGUAGE sql AS 'SELECT NULL';
            CREATE FUNCTION kv_increment(text, text, numeric, numeric, double precision, bigint, bigint, double precision[], integer, text) RETURNS void LANGUAGE sql AS 'SELECT NULL';
            CREATE FUNCTION kv_delete(text, text, boolean, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
            CREATE FUNCTION kv_claim_request(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
            CREATE FUNCTION kv_purge_expired(integer, boolean) RETURNS void LANGUAGE sql AS 'SELECT NULL';
            INSERT INTO kv_entries (namespace, key, value, size_bytes) VALUES ('old', 'plan', '{"step":1}', 10), ('old', 'turns', '5', 1);
            INSERT INTO kv_namespace_usage (namespace, used_bytes, entry_count) VALUES ('old', 11, 2);
            INSERT INTO kv_processed_requests (request_id, result) VALUES ('increment-before', '5');
            """;
        await using (var command = dataSource.CreateCommand(tables + ";" + earlier)) await command.ExecuteNonQueryAsync();

        await MigrateAsync(dataSource);

        var adapter = new PostgresKvStoreAdapter(dataSource, new PostgresAdapterOptions(), new KvLimits());
        var none = CancellationToken.None;
        Assert.Equal("""{"step":1}""", (await adapter.GetAsync("old", "plan", none)).Value!.Value.GetRawText());
        Assert.Equal(11, (await adapter.UsageAsync("old", none)).UsedBytes);
        // An identity recorded before the upgrade is still answered as a replay...
        Assert.Equal(5, (await adapter.IncrementAsync("old", "turns", 5, 0, null, "increment-before", none)).Value.GetInt64());
        // ...and new ones remember what they identified.
        Assert.Equal(6, (await adapter.IncrementAsync("old", "turns", 1, 0, null, "increment-after", none)).Value.GetInt64());
        var reused = await Assert.ThrowsAsync<KvStoreException>(() => adapter.DeleteAsync("old", "plan", "increment-after", none));
        Assert.Contains("increment-after", reused.Message);
        Assert.Equal(6, (await adapter.GetAsync("old", "turns", none)).Value!.Value.GetInt64());

        Assert.Equal(0, await ScalarAsync(dataSource, "SELECT count(*) FROM pg_tables WHERE tablename = 'kv_schema_migrations'"));
        // The earlier per-command functions are gone; the purge's has its current signature only.
        foreach (var function in new[] { "kv_set", "kv_increment", "kv_delete", "kv_claim_request" })
            Assert.Equal(0, await ScalarAsync(dataSource, $"SELECT count(*) FROM pg_proc WHERE proname = '{function}'"));
        Assert.Equal(1, await ScalarAsync(dataSource, "SELECT count(*) FROM pg_proc WHERE proname = 'kv_purge_expired'"));
    });
}
