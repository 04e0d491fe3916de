using KvWorker.Contracts;
using System.Diagnostics;
using System.Globalization;
using KvWorker.Postgres;
using Npgsql;

namespace KvWorker.Bench;

/// <summary>
/// A fresh database (with the worker's schema) and fresh RabbitMQ virtual hosts,
/// the worker replicas and echo service running against them, all removed again
/// on disposal. Servers: KV_BENCH_POSTGRES (an Npgsql connection string for a role
/// that may create databases) and KV_BENCH_RABBITMQ (an AMQP URI of a user that
/// may use new virtual hosts; rabbitmqctl on this machine creates them).
/// </summary>
public sealed class Deployment : IAsyncDisposable
{
    /// <summary>Namespace quota for the benchmark, so no request is rejected for space.</summary>
    public const long NamespaceQuotaBytes = 1L << 30;

    /// <summary>Messages a consumer takes at once: the worker's default, which the raw echo uses too.</summary>
    public static ushort PrefetchCount => new Configuration.RabbitMqOptions().PrefetchCount;

    /// <summary>The port of the PostgreSQL server the benchmark uses, whose processes' CPU it measures.</summary>
    public static int PostgresPort => new NpgsqlConnectionStringBuilder(AdminConnectionString).Port;

    private readonly List<string> _virtualHosts = [];
    private readonly List<ServiceProcess> _processes = [];

    private Deployment(string name, string connectionString)
    {
        Name = name;
        ConnectionString = connectionString;
        // Enough connections for the direct PostgreSQL baseline's 64 concurrent clients, and
        // statements prepared automatically and no session reset as the worker's (see PostgresConnection).
        DataSource = NpgsqlDataSource.Create(
            new NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = 200, MaxAutoPrepare = 32, NoResetOnClose = true }.ConnectionString);
    }

    public string Name { get; }
    public string ConnectionString { get; }
    public NpgsqlDataSource DataSource { get; }

    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable("KV_BENCH_POSTGRES") is { Length: > 0 } configured
            ? configured
            : "Host=127.0.0.1;Port=5432;Username=kvworker;Password=kvworker;Database=kvworker";

    public static Uri Broker =>
        new(Environment.GetEnvironmentVariable("KV_BENCH_RABBITMQ") is { Length: > 0 } configured
            ? configured
            : "amqp://guest:guest@127.0.0.1:5672/");

    /// <summary>The database every benchmark database starts as a copy of (<c>KV_BENCH_TEMPLATE</c>); null: they start empty.</summary>
    public static string? Template => Environment.GetEnvironmentVariable("KV_BENCH_TEMPLATE") is { Length: > 0 } name ? name : null;

    /// <summary>
    /// Creates the database <paramref name="name"/>, empty or as a copy of <see cref="Template"/> (a store
    /// that already holds data, say), and applies the worker's schema.
    /// </summary>
    public static async Task<Deployment> CreateAsync(string name, CancellationToken cancellationToken)
    {
        // FILE_COPY: the copy's files are copied, not written again through the WAL (gigabytes, for a large template).
        var template = Template is { } copied ? $" TEMPLATE \"{copied}\" STRATEGY FILE_COPY" : "";
        await using (var admin = NpgsqlDataSource.Create(AdminConnectionString))
        await using (var command = admin.CreateCommand($"CREATE DATABASE \"{name}\"{template}"))
            await command.ExecuteNonQueryAsync(cancellationToken);
        var deployment = new Deployment(name, new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString);
        await PostgresSchema.MigrateAsync(deployment.DataSource, _ => { }, cancellationToken);
        return deployment;
    }

    /// <summary>Creates the virtual host <c>{Name}_{suffix}</c>; returns the broker URI that points into it.</summary>
    public async Task<Uri> AddVirtualHostAsync(string suffix, CancellationToken cancellationToken)
    {
        var virtualHost = $"{Name}_{suffix}";
        var user = Uri.UnescapeDataString(Broker.UserInfo.Split(':')[0]);
        await RabbitMqCtlAsync(cancellationToken, "add_vhost", virtualHost);
        _virtualHosts.Add(virtualHost);
        await RabbitMqCtlAsync(cancellationToken, "set_permissions", "-p", virtualHost, user, ".*", ".*", ".*");
        return new UriBuilder(Broker) { Path = "/" + Uri.EscapeDataString(virtualHost) }.Uri;
    }

    /// <summary>
    /// The configuration of every worker replica the benchmark starts: this deployment's
    /// database and virtual host, a quota large enough for any run, and the policy grant
    /// for the benchmark's broker user.
    /// </summary>
    public Dictionary<string, string?> WorkerSettings(Uri virtualHost, IDictionary<string, string?>? overrides = null)
    {
        var credentials = virtualHost.UserInfo.Split(':');
        var user = Uri.UnescapeDataString(credentials[0]);
        var settings = new Dictionary<string, string?>(RabbitMqSettings(virtualHost))
        {
            ["tools:kv_store:adapters:postgres:url"] = ConnectionString,
            ["tools:kv_store:adapters:postgres:namespace_quota_bytes"] = NamespaceQuotaBytes.ToString(CultureInfo.InvariantCulture),
            // Policy: requests carry user_id = the broker user, which acts as persona "bench"
            // with both flags. (Ignored by workers without the persona policy.)
            ["tools:kv_store:personas:bench:flags:0"] = "type.system.kv_store_access",
            ["tools:kv_store:personas:bench:flags:1"] = "type.system.kv_store_write",
            [$"tools:kv_store:identities:{user}:personas:0"] = "bench",
            [$"tools:kv_store:identities:{user}:default_persona"] = "bench",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        // Not a worker setting: the same database through another host (a Unix socket directory, say).
        if (settings.Remove("bench:postgres_host", out var host))
            settings["tools:kv_store:adapters:postgres:url"] = new NpgsqlConnectionStringBuilder(ConnectionString) { Host = host }.ConnectionString;
        return settings;
    }

    private static Dictionary<string, string?> RabbitMqSettings(Uri virtualHost)
    {
        var credentials = virtualHost.UserInfo.Split(':');
        return new()
        {
            ["RabbitMq:Host"] = virtualHost.Host,
            ["RabbitMq:Port"] = virtualHost.Port.ToString(CultureInfo.InvariantCulture),
            ["RabbitMq:VirtualHost"] = Uri.UnescapeDataString(virtualHost.AbsolutePath.TrimStart('/')),
            ["RabbitMq:Username"] = Uri.UnescapeDataString(credentials[0]),
            ["RabbitMq:Password"] = Uri.UnescapeDataString(credentials[1]),
        };
    }

    /// <summary>Starts <paramref name="replicas"/> worker processes on the virtual host and waits until all consume.</summary>
    public async Task<ServiceProcess[]> StartWorkersAsync(
        Uri virtualHost, int replicas, CancellationToken cancellationToken, IDictionary<string, string?>? overrides = null)
    {
        var settings = WorkerSettings(virtualHost, overrides);
        // Not a worker setting either: another build of the worker, e.g. of the revision before a change.
        // A relative path is taken from the repository's root, where scripts/bench.sh runs, as --markdown's is.
        var dll = settings.Remove("bench:worker", out var build) ? Path.GetFullPath(build!) : "KvWorker.dll";
        var workers = Enumerable.Range(1, replicas)
            .Select(i => Track(ServiceProcess.Start($"worker {virtualHost.AbsolutePath.TrimStart('/')} #{i}", dll, [], settings)))
            .ToArray();
        await RpcClient.WaitForConsumersAsync(virtualHost, replicas, () => string.Join('\n', workers.Select(w => w.RecentOutput)), cancellationToken);
        return workers;
    }

    /// <summary>Starts the echo service (baseline a) on the virtual host and waits until it consumes.</summary>
    public async Task<ServiceProcess> StartEchoAsync(
        Uri virtualHost, CancellationToken cancellationToken, IDictionary<string, string?>? overrides = null)
    {
        var settings = RabbitMqSettings(virtualHost);
        settings["Logging:LogLevel:Default"] = "Warning";
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        var echo = Track(ServiceProcess.Start("echo service", typeof(EchoServer).Assembly.GetName().Name + ".dll", [EchoServer.Argument], settings));
        await RpcClient.WaitForConsumersAsync(virtualHost, 1, () => echo.RecentOutput, cancellationToken);
        return echo;
    }

    /// <summary>Starts the raw RabbitMQ.Client echo (baseline a0) on the virtual host and waits until it consumes.</summary>
    public async Task<ServiceProcess> StartRawEchoAsync(Uri virtualHost, ushort prefetch, CancellationToken cancellationToken)
    {
        var echo = Track(ServiceProcess.Start("raw echo", typeof(RawEchoServer).Assembly.GetName().Name + ".dll",
            [RawEchoServer.Argument, virtualHost.ToString(), prefetch.ToString(CultureInfo.InvariantCulture)], new Dictionary<string, string?>()));
        await RpcClient.WaitForConsumersAsync(virtualHost, 1, () => echo.RecentOutput, cancellationToken);
        return echo;
    }

    private ServiceProcess Track(ServiceProcess process)
    {
        _processes.Add(process);
        return process;
    }

    /// <summary>
    /// Writes <paramref name="keysPerNamespace"/> entries <c>{keyPrefix}0..</c> holding <paramref name="valueJson"/>
    /// into each namespace straight with SQL (already expired when <paramref name="expired"/>), and sets the
    /// namespaces' usage counters to what they now hold, as the worker keeps them.
    /// </summary>
    public async Task PrefillAsync(
        IReadOnlyList<string> namespaces, string keyPrefix, int keysPerNamespace, string valueJson, bool expired, CancellationToken cancellationToken)
    {
        const string entriesSql = """
            INSERT INTO kv_entries (namespace, key, value, size_bytes, expires_at, version)
            SELECT ns, $2 || i, $4, octet_length($4), CASE WHEN $5 THEN now() - interval '1 minute' END, 1
              FROM unnest($1::text[]) AS ns, generate_series(0, $3 - 1) AS i
            ON CONFLICT (namespace, key) DO UPDATE
               SET value = excluded.value, size_bytes = excluded.size_bytes, expires_at = excluded.expires_at
            """;
        // Version 1 for every prefilled entry: the namespace's counter continues above the highest.
        const string usageSql = """
            INSERT INTO kv_namespace_usage (namespace, used_bytes, entry_count, last_version)
            SELECT e.namespace, sum(e.size_bytes), count(*), max(e.version) FROM kv_entries e WHERE e.namespace = ANY ($1) GROUP BY e.namespace
            ON CONFLICT (namespace) DO UPDATE
               SET used_bytes = excluded.used_bytes, entry_count = excluded.entry_count,
                   last_version = greatest(kv_namespace_usage.last_version, excluded.last_version)
            """;
        await using var connection = await DataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var command = new NpgsqlCommand(entriesSql, connection, transaction))
        {
            command.CommandTimeout = 0; // a million rows take a while on a busy machine
            command.Parameters.Add(Namespaces(namespaces));
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = keyPrefix });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = keysPerNamespace });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = valueJson });
            command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = expired });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var command = new NpgsqlCommand(usageSql, connection, transaction))
        {
            command.CommandTimeout = 0;
            command.Parameters.Add(Namespaces(namespaces));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Writes the entries kv_get reads and kv_delete removes for a target's first <paramref name="lanes"/> lanes.</summary>
    public Task FillLanesAsync(
        string target, int lanes, CancellationToken cancellationToken, Layout layout = Layout.Spread, int keysPerLane = Workload.KeysPerLane) =>
        layout == Layout.Spread
            ? PrefillAsync(Enumerable.Range(0, lanes).Select(lane => Workload.LaneNamespace(target, lane)).ToList(),
                Workload.KeyPrefix(KvOperations.Get), keysPerLane, Workload.SetValue, expired: false, cancellationToken)
            : PrefillAsync([Workload.HotNamespace(target)],
                Workload.KeyPrefix(KvOperations.Get), lanes * keysPerLane, Workload.SetValue, expired: false, cancellationToken);

    private static NpgsqlParameter Namespaces(IReadOnlyList<string> namespaces) =>
        new NpgsqlParameter<string[]> { TypedValue = namespaces.ToArray() };

    /// <summary>
    /// Vacuums and analyses the store's tables, so the autovacuum that the warm-ups' writes call for
    /// does not run during the first measured cells.
    /// </summary>
    public async Task VacuumAsync(CancellationToken cancellationToken)
    {
        await using var command = DataSource.CreateCommand("VACUUM (ANALYZE) kv_entries, kv_namespace_usage, kv_processed_requests, kv_outbox");
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<long> CountExpiredAsync(CancellationToken cancellationToken)
    {
        await using var command = DataSource.CreateCommand("SELECT count(*) FROM kv_entries WHERE expires_at <= now()");
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task RabbitMqCtlAsync(CancellationToken cancellationToken, params string[] arguments)
    {
        var start = new ProcessStartInfo("rabbitmqctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") + ":/usr/sbin:/usr/lib/rabbitmq/bin";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("rabbitmqctl did not start");
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken) + await process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} failed: {output}");
    }

    /// <summary>Stops the processes, then removes the virtual hosts and the database.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes) process.Dispose();
        foreach (var virtualHost in _virtualHosts)
            await RabbitMqCtlAsync(CancellationToken.None, "delete_vhost", virtualHost);
        await DataSource.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var admin = NpgsqlDataSource.Create(AdminConnectionString);
        await DropDatabaseAsync(admin, Name);
    }

    /// <summary>Drops a database, ending its sessions (the tests' databases too).</summary>
    public static async Task DropDatabaseAsync(NpgsqlDataSource admin, string name)
    {
        await using var command = admin.CreateCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await command.ExecuteNonQueryAsync();
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege && attempt < 30)
            {
                // An autovacuum worker on the database, which this role may not terminate: it ends soon.
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }
}
