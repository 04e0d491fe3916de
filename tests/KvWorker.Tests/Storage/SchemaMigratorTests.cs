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
    public Task A_worker_older_than_the_database_schema_refuses_to_start_and_leaves_the_newer_functions_alone() => WithEmptyDatabaseAsync(async dataSource =>
    {
        await MigrateAsync(dataSource);
        // As if a newer worker had since applied a V4 and its own text of a function file.
        await ScalarAsync(dataSource, $"""
            INSERT INTO {PostgresSchema.ChangelogTable} (type, version, description, name, checksum, installed_by, installed_on, success)
            SELECT type, '4', 'from a newer release', 'V4__from_a_newer_release.sql', 'newer', installed_by, installed_on, success
              FROM {PostgresSchema.ChangelogTable} WHERE name = 'V3__versions_and_key_order.sql'
            """);
        await ScalarAsync(dataSource, $"UPDATE {PostgresSchema.ChangelogTable} SET checksum = 'newer' WHERE name = 'R__kv_purge_expired.sql'");

        var refused = await Assert.ThrowsAsync<PostgresStartupException>(() => MigrateAsync(dataSource));

        Assert.Contains("V4__from_a_newer_release.sql", refused.Message);
        Assert.Single(await AppliedAsync(dataSource), name => name == "R__kv_purge_expired.sql");
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

    [Fact]
    public Task A_role_with_a_schema_of_its_own_and_no_create_on_public_keeps_everything_in_its_schema() => WithEmptyDatabaseAsync(async dataSource =>
    {
        // PostgreSQL 15's default for a role that does not own the database: no CREATE on public, and
        // the role's own schema first on the search path ("$user", public).
        var user = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Username!;
        await ScalarAsync(dataSource, $"CREATE SCHEMA \"{user}\"");
        await ScalarAsync(dataSource, "REVOKE CREATE ON SCHEMA public FROM PUBLIC, pg_database_owner");

        await MigrateAsync(dataSource);
        await MigrateAsync(dataSource); // and again, later

        Assert.Equal(0, await ScalarAsync(dataSource, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"));
        Assert.Equal(1, await ScalarAsync(dataSource, $"SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '{PostgresSchema.ChangelogTable}'"));
        Assert.Equal(PostgresSchema.Scripts.Order(), (await AppliedAsync(dataSource)).Order());
    });

    [Fact]
    public Task A_changelog_an_earlier_start_kept_in_public_beside_tables_in_the_roles_schema_stays_in_use() => WithEmptyDatabaseAsync(async dataSource =>
    {
        var user = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).Username!;
        await ScalarAsync(dataSource, $"CREATE SCHEMA \"{user}\"");
        await MigrateAsync(dataSource);
        // Where earlier releases kept it when the role could create in public.
        await ScalarAsync(dataSource, $"ALTER TABLE {PostgresSchema.ChangelogTable} SET SCHEMA public");

        await MigrateAsync(dataSource);

        Assert.Equal(1, await ScalarAsync(dataSource, $"SELECT count(*) FROM pg_tables WHERE tablename = '{PostgresSchema.ChangelogTable}'"));
        Assert.Equal(PostgresSchema.Scripts.Order(), (await AppliedAsync(dataSource)).Order());
    });
}
