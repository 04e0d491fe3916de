using KvWorker.Configuration;
using KvWorker.Health;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Tests.Configuration;

public sealed class ConfigurationTests
{
    private const string PostgresKey = "tools:kv_store:adapters:postgres";

    [Fact]
    public void The_sqlalchemy_url_form_becomes_an_npgsql_connection_string()
    {
        var builder = PostgresConnection.ToConnectionStringBuilder(
            "postgresql+psycopg://atlas:p%40ss%3Aword@db.example.com:5433/atlas_kv?sslmode=verify-full&application_name=kv");

        Assert.Equal("db.example.com", builder.Host);
        Assert.Equal(5433, builder.Port);
        Assert.Equal("atlas", builder.Username);
        Assert.Equal("p@ss:word", builder.Password);
        Assert.Equal("atlas_kv", builder.Database);
        Assert.Equal(SslMode.VerifyFull, builder.SslMode);
        Assert.Equal("kv", builder.ApplicationName);
    }

    [Theory]
    [InlineData("health ready --Health:Port=8080", "health ready")]
    [InlineData("health --Health:Port 8080 live", "health live")]
    [InlineData("/Health:Port 8080 Health:Port=8080 helth", "helth")]
    [InlineData("-x health --Health:Port=8080", "-x health")] // one dash without '=' is skipped by configuration too
    public void The_command_line_words_are_the_arguments_configuration_skips(string line, string words)
    {
        var args = line.Split(' ');

        Assert.Equal(words.Split(' '), CommandLine.Words(args));
        // Every other argument is a setting configuration reads.
        Assert.Equal("8080", new ConfigurationBuilder().AddCommandLine(args).Build()["Health:Port"]);
    }

    [Theory]
    [InlineData("postgresql://u@localhost/db", "localhost", 5432)]
    [InlineData("postgres://u:p@[::1]:6543/db", "::1", 6543)]
    [InlineData("Host=pg.internal;Port=5444;Username=u;Database=db", "pg.internal", 5444)]
    [InlineData("postgresql+psycopg://u:p@/db?host=/var/run/postgresql", "/var/run/postgresql", 5432)] // a Unix socket, as SQLAlchemy writes it
    [InlineData("postgresql://u@/db?host=/tmp&port=5433", "/tmp", 5433)]
    [InlineData("postgresql://u@%2Ftmp:5433/db", "/tmp", 5433)] // as libpq also reads it
    public void Urls_and_connection_strings_are_both_accepted(string url, string host, int port)
    {
        var builder = PostgresConnection.ToConnectionStringBuilder(url);
        Assert.Equal((host, port), (builder.Host, builder.Port));
    }

    [Fact]
    public void A_url_with_several_hosts_becomes_npgsql_multiple_hosts_tried_for_the_primary()
    {
        var builder = PostgresConnection.ToConnectionStringBuilder(
            "postgresql+psycopg://atlas:p%40ss@pg1.internal:5432,pg2.internal:5433,pg3.internal/atlas_kv?target_session_attrs=read-write&connect_timeout=3");

        Assert.Equal("pg1.internal:5432,pg2.internal:5433,pg3.internal:5432", builder.Host);
        Assert.Equal("read-write", builder.TargetSessionAttributes);
        Assert.Equal(("atlas", "p@ss", "atlas_kv", 3), (builder.Username, builder.Password, builder.Database, builder.Timeout));
        Assert.IsType<NpgsqlMultiHostDataSource>(NpgsqlDataSource.Create(builder.ConnectionString));
    }

    [Theory]
    [InlineData("postgresql://u@h1,h2/db", 2)]                          // a failover's new primary is noticed within seconds
    [InlineData("Host=h1,h2;Username=u;Host Recheck Seconds=5", 5)]     // as configured
    [InlineData("postgresql://u@h1/db", 10)]                            // one host: Npgsql's default, unused
    public void Several_hosts_have_their_roles_rechecked_every_two_seconds_unless_configured(string url, int seconds)
    {
        var options = new PostgresAdapterOptions { Url = url };

        var builder = new NpgsqlConnectionStringBuilder(PostgresConnection.Resolve(options, new ConfigurationBuilder().Build()));

        Assert.Equal(seconds, builder.HostRecheckSeconds);
    }

    [Theory]
    [InlineData("read-write")]
    [InlineData("primary")]
    [InlineData("any")]
    [InlineData("standby")]
    [InlineData("prefer-standby")]
    [InlineData("read-only")]
    public void Every_libpq_target_session_attrs_value_reaches_npgsql(string value)
    {
        var builder = PostgresConnection.ToConnectionStringBuilder($"postgresql://u@h1,h2:5433/db?target_session_attrs={value}");

        Assert.Equal(("h1:5432,h2:5433", value), (builder.Host, builder.TargetSessionAttributes));
    }

    [Fact]
    public void Bracketed_ipv6_hosts_may_be_among_several()
    {
        var builder = PostgresConnection.ToConnectionStringBuilder("postgresql://u@[::1]:5433,[fe80::2]/db");

        Assert.Equal("[::1]:5433,[fe80::2]:5432", builder.Host);
    }

    [Fact]
    public void A_multi_host_url_in_ATLAS_KV_STORE_URL_reaches_the_connection_string()
    {
        var configuration = new ConfigurationManager();
        configuration.AddKvStoreConfiguration(Directory.CreateTempSubdirectory().FullName,
            name => name == "ATLAS_KV_STORE_URL" ? "postgresql://kv:kv@10.0.0.1:5432,10.0.0.2:5432/kv?target_session_attrs=primary" : null);

        var builder = new NpgsqlConnectionStringBuilder(PostgresConnection.Resolve(BindPostgres(configuration), configuration));

        Assert.Equal(("10.0.0.1:5432,10.0.0.2:5432", "primary", "kv"), (builder.Host, builder.TargetSessionAttributes, builder.Database));
    }

    [Theory]
    [InlineData("postgresql://u@h1:5432,h2:x/db", "port 'x' of host 'h2' is not a port number")]
    [InlineData("postgresql://u@h1,/db", "no host in ''")]
    [InlineData("postgresql://u@/db", "no host: name one after '@', or a Unix socket directory as ?host=")]
    [InlineData("postgresql://u@h1,:5433/db", "no host in ':5433'")]
    [InlineData("postgresql://u@h1,h2/db?target_session_attrs=leader", "Target Session Attributes")]
    public void A_bad_multi_host_url_fails_validation_naming_the_key(string url, string problem)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Validate(new Dictionary<string, string?> { [$"{PostgresKey}:url"] = url }));

        Assert.Contains($"{PostgresKey}:url is not a PostgreSQL URL or Npgsql connection string: ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void RabbitMq_hosts_name_the_cluster_nodes_and_without_them_host_and_port_name_one_node()
    {
        var cluster = new RabbitMqOptions { Hosts = "rmq1:5672, rmq2:5673,rmq3", Port = 5674 };
        var single = new RabbitMqOptions { Host = "broker.internal", Port = 5673 };

        Assert.Equal([("rmq1", 5672), ("rmq2", 5673), ("rmq3", 5674)], cluster.Nodes());
        Assert.Equal([("broker.internal", 5673)], single.Nodes());
    }

    [Theory]
    [InlineData("RabbitMq:Hosts", "rmq1:5672,rmq2:amqp", "RabbitMq:Hosts is not a list of nodes (host:port, separated by commas): port 'amqp' of host 'rmq2' is not a port number")]
    [InlineData("RabbitMq:Hosts", "rmq1,:5672", "RabbitMq:Hosts is not a list of nodes (host:port, separated by commas): no host in ':5672'")]
    [InlineData("RabbitMq:Hosts", "rmq1,[fd00::2]:5672", "RabbitMq:Hosts is not a list of nodes (host:port, separated by commas): 'fd00::2' is an IPv6 address")]
    [InlineData("RabbitMq:Hosts", " , ", "RabbitMq:Hosts names no node")]
    [InlineData("RabbitMq:QueueType", "mirrored", "RabbitMq:QueueType must be one of classic, quorum, not 'mirrored'")]
    public void Bad_rabbitmq_cluster_settings_are_explained_naming_the_key(string key, string value, string message)
    {
        var (error, configuration) = ReadWithOnly<RabbitMqOptions>(key, value);

        Assert.Contains(message, Assert.Single(ConfigurationErrors.Explain(error!, configuration)!));
    }

    /// <summary>Keys of the worker's own sections that no setting binds, which binding would skip without a word.</summary>
    [Theory]
    [InlineData("RabbitMq:Hostname", "RabbitMq:Hostname is not a setting the worker reads (RabbitMq takes Host, Port, Hosts, VirtualHost, Username, Password, PrefetchCount, QueueType)")]
    [InlineData("RabbitMq:Prefetch:Count", "RabbitMq:Prefetch is not a setting the worker reads (RabbitMq takes Host, Port, Hosts, VirtualHost, Username, Password, PrefetchCount, QueueType)")]
    [InlineData("Worker:ShutdownTimeout", "Worker:ShutdownTimeout is not a setting the worker reads (Worker takes ShutdownTimeoutSeconds)")]
    [InlineData("Health:Prot", "Health:Prot is not a setting the worker reads (Health takes Port)")]
    public void An_unknown_key_in_the_workers_own_sections_is_refused_naming_it(string key, string message)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = "1" }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddKvWorkerOptions();
        services.AddKvHealth();
        using var provider = services.BuildServiceProvider();

        var errors = new[]
        {
            Record.Exception(() => provider.GetRequiredService<IOptions<RabbitMqOptions>>().Value),
            Record.Exception(() => provider.GetRequiredService<IOptions<WorkerOptions>>().Value),
            Record.Exception(() => provider.GetRequiredService<IOptions<HealthOptions>>().Value),
        };

        Assert.Equal(message, Assert.Single(errors.OfType<Exception>().SelectMany(error => ConfigurationErrors.Explain(error, configuration)!)));
    }

    [Fact]
    public void A_bad_rabbitmq_hosts_setting_is_named_as_written()
    {
        var directory = Directory.CreateTempSubdirectory();
        var file = Path.Combine(directory.FullName, "appsettings.json");
        File.WriteAllText(file, """{"RabbitMq":{"Hosts":"rmq1:5672,rmq2:amqp"}}""");
        var configuration = new ConfigurationBuilder().AddJsonFile(file).Build();
        using var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddKvWorkerOptions().BuildServiceProvider();

        var error = Record.Exception(() => services.GetRequiredService<IOptions<RabbitMqOptions>>().Value);

        Assert.Equal("appsettings.json key RabbitMq:Hosts is not a list of nodes (host:port, separated by commas): port 'amqp' of host 'rmq2' is not a port number",
            Assert.Single(ConfigurationErrors.Explain(error!, configuration)!));
        directory.Delete(recursive: true);
    }

    [Fact]
    public void A_rabbitmq_port_of_zero_is_refused_naming_the_key()
    {
        var (error, configuration) = ReadWithOnly<RabbitMqOptions>("RabbitMq:Port", "0");

        Assert.Equal("RabbitMq:Port must be a TCP port (1 to 65535)", Assert.Single(ConfigurationErrors.Explain(error!, configuration)!));
    }

    [Fact]
    public void A_prefetch_of_zero_which_would_consume_nothing_is_refused_naming_the_key()
    {
        var (error, configuration) = ReadWithOnly<RabbitMqOptions>("RabbitMq:PrefetchCount", "0");

        Assert.Equal("RabbitMq:PrefetchCount must be at least 1 (messages each replica takes from a queue at once)",
            Assert.Single(ConfigurationErrors.Explain(error!, configuration)!));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("3601")]
    public void A_shutdown_grace_period_outside_a_second_to_an_hour_is_refused(string value)
    {
        var error = Assert.IsType<OptionsValidationException>(ReadWithOnly<WorkerOptions>("Worker:ShutdownTimeoutSeconds", value).Error);

        Assert.Contains("Worker:ShutdownTimeoutSeconds must be a positive number of seconds, at most 3600", error.Message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("86401")]
    [InlineData("1e9")]
    public void A_request_budget_not_positive_or_over_a_day_is_explained_naming_the_key(string value)
    {
        var (error, configuration) = ReadWithOnly<KvStoreOptions>("tools:kv_store:request_timeout_seconds", value);

        // Among the failures: this configuration registers no adapter either.
        Assert.Contains(ConfigurationErrors.Explain(error!, configuration)!,
            failure => failure.Contains("tools:kv_store:request_timeout_seconds must be a positive number of seconds, at most 86400", StringComparison.Ordinal));
    }

    [Fact]
    public void Pool_settings_map_onto_npgsql_pooling()
    {
        var options = new PostgresAdapterOptions { Url = "postgresql://u@h/db", Pool = new PoolOptions { Size = 5, MaxOverflow = 7, Timeout = 12 } };

        var builder = new NpgsqlConnectionStringBuilder(PostgresConnection.Resolve(options, new ConfigurationBuilder().Build()));

        Assert.Equal((5, 12, 12), (builder.MinPoolSize, builder.MaxPoolSize, builder.Timeout));
    }

    [Theory]
    [InlineData("postgresql://u@h/db?connect_timeout=3", 5, 12, 3)]
    [InlineData("Host=h;Username=u;Timeout=4;Maximum Pool Size=40", 5, 40, 4)]
    [InlineData("Host=h;Username=u;Minimum Pool Size=1", 1, 12, 12)]
    [InlineData("postgresql://u@h/db", 5, 12, 12)]
    public void Pool_settings_named_in_the_url_win_over_the_pool_options(string url, int min, int max, int timeout)
    {
        // A fraction of a second, as SQLAlchemy takes, rounds up to Npgsql's whole seconds.
        var options = new PostgresAdapterOptions { Url = url, Pool = new PoolOptions { Size = 5, MaxOverflow = 7, Timeout = 11.2 } };

        var builder = new NpgsqlConnectionStringBuilder(PostgresConnection.Resolve(options, new ConfigurationBuilder().Build()));

        Assert.Equal((min, max, timeout), (builder.MinPoolSize, builder.MaxPoolSize, builder.Timeout));
    }

    [Fact]
    public void Reuse_conversation_store_takes_the_conversation_store_database_when_one_is_configured()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [PostgresConnection.ConversationStoreKey] = "Host=conversations;Database=atlas" })
            .Build();
        var reuse = new PostgresAdapterOptions { Url = "postgresql://u@dedicated/kv", ReuseConversationStore = true };
        var dedicated = new PostgresAdapterOptions { Url = "postgresql://u@dedicated/kv", ReuseConversationStore = false };

        Assert.Equal("conversations", new NpgsqlConnectionStringBuilder(PostgresConnection.Resolve(reuse, configuration)).Host);
        Assert.Equal("dedicated", new NpgsqlConnectionStringBuilder(PostgresConnection.Resolve(dedicated, configuration)).Host);
    }

    [Fact]
    public void Atlas_environment_variables_are_fallbacks_below_files_and_dotnet_overrides()
    {
        var directory = Directory.CreateTempSubdirectory();
        File.WriteAllText(Path.Combine(directory.FullName, "appsettings.json"),
            """{"tools":{"kv_store":{"adapters":{"postgres":{"pool":{"size":3}}}}}}""");
        var environment = new Dictionary<string, string>
        {
            ["ATLAS_KV_STORE_URL"] = "postgresql://env@envhost/kv",
            ["ATLAS_KV_POOL_SIZE"] = "99",
            ["ATLAS_KV_NAMESPACE_QUOTA_BYTES"] = "2048",
            ["ATLAS_KV_GLOBAL_QUOTA_BYTES"] = "4096",
            ["ATLAS_KV_MAX_OVERFLOW"] = "1",
            ["ATLAS_KV_POOL_TIMEOUT"] = "7",
            ["ATLAS_KV_REUSE_CONVERSATION"] = "false",
        };
        var configuration = new ConfigurationManager();
        configuration.AddJsonFile(Path.Combine(directory.FullName, "appsettings.json"));
        configuration.AddInMemoryCollection(new Dictionary<string, string?> { [$"{PostgresKey}:pool:max_overflow"] = "5" }); // as tools__kv_store__... would
        configuration.AddKvStoreConfiguration(directory.FullName, name => environment.GetValueOrDefault(name));

        var postgres = BindPostgres(configuration);

        Assert.Equal("postgresql://env@envhost/kv", postgres.Url);
        Assert.Equal(3, postgres.Pool.Size);          // the file wins over ATLAS_KV_POOL_SIZE
        Assert.Equal(5, postgres.Pool.MaxOverflow);   // a .NET override wins over ATLAS_KV_MAX_OVERFLOW
        Assert.Equal(7, postgres.Pool.Timeout);
        Assert.Equal(2048, postgres.NamespaceQuotaBytes);
        Assert.Equal(4096, postgres.GlobalQuotaBytes);
        Assert.False(postgres.ReuseConversationStore);
    }

    [Theory]
    [InlineData("yes", "0", "2.5", true, null, 2.5)]
    [InlineData("off", "-1", "7", false, null, 7.0)]
    [InlineData("anything", "4096", "0.1", false, 4096L, 0.1)]
    public void Atlas_environment_variables_are_read_as_the_original_tool_read_them(
        string reuse, string globalQuota, string poolTimeout, bool reuseExpected, long? globalQuotaExpected, double poolTimeoutExpected)
    {
        var environment = new Dictionary<string, string>
        {
            ["ATLAS_KV_REUSE_CONVERSATION"] = reuse,
            ["ATLAS_KV_GLOBAL_QUOTA_BYTES"] = globalQuota,
            ["ATLAS_KV_POOL_TIMEOUT"] = poolTimeout,
        };
        var configuration = new ConfigurationManager();
        configuration.AddKvStoreConfiguration(Directory.CreateTempSubdirectory().FullName, name => environment.GetValueOrDefault(name));

        var postgres = BindPostgres(configuration);

        Assert.Equal((reuseExpected, globalQuotaExpected, poolTimeoutExpected), (postgres.ReuseConversationStore, postgres.GlobalQuotaBytes, postgres.Pool.Timeout));
    }

    [Fact]
    public void The_shipped_appsettings_json_leaves_every_ATLAS_KV_variable_in_effect()
    {
        // A key the file sets would win over its variable, which would then do nothing.
        var shipped = new ConfigurationBuilder().AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json")).Build();

        Assert.Equal("postgres", shipped["tools:kv_store:default_adapter"]);
        Assert.All(AtlasEnvironment.KeysByVariable, pair => Assert.True(shipped[pair.Value] is null, $"appsettings.json sets {pair.Value}, hiding {pair.Key}"));
    }

    [Fact]
    public void Defaults_apply_when_neither_file_nor_environment_sets_a_key()
    {
        var postgres = BindPostgres(new ConfigurationBuilder().Build());

        Assert.Equal(1024 * 1024, postgres.NamespaceQuotaBytes);
        Assert.Null(postgres.GlobalQuotaBytes);
        Assert.False(postgres.RequireSynchronousReplication);
    }

    [Fact]
    public void Config_yaml_is_above_appsettings_and_below_user_secrets()
    {
        var directory = Directory.CreateTempSubdirectory();
        File.WriteAllText(Path.Combine(directory.FullName, "config.yaml"), "tools:\n  kv_store:\n    default_adapter: from-yaml\n    request_timeout_seconds: 7\n");
        File.WriteAllText(Path.Combine(directory.FullName, "appsettings.json"), """{"tools":{"kv_store":{"default_adapter":"from-appsettings","request_timeout_seconds":5,"max_batch":3}}}""");
        File.WriteAllText(Path.Combine(directory.FullName, "secrets.json"), """{"tools":{"kv_store":{"default_adapter":"from-secrets"}}}""");
        var configuration = new ConfigurationManager();
        configuration.AddJsonFile(Path.Combine(directory.FullName, "appsettings.json"));
        configuration.AddJsonFile(Path.Combine(directory.FullName, "secrets.json")); // as AddUserSecrets adds them, after appsettings

        configuration.AddKvStoreConfiguration(directory.FullName, _ => null);

        Assert.Equal("from-secrets", configuration["tools:kv_store:default_adapter"]);
        Assert.Equal("7", configuration["tools:kv_store:request_timeout_seconds"]);
        directory.Delete(recursive: true);
    }

    [Fact]
    public void A_config_yaml_with_the_original_layout_is_read()
    {
        var directory = Directory.CreateTempSubdirectory();
        File.WriteAllText(Path.Combine(directory.FullName, "config.yaml"), """
            tools:
              kv_store:
                default_adapter: postgres
                adapters:
                  postgres:
                    reuse_conversation_store: false
                    url: postgresql+psycopg://atlas:atlas@db.example.com:5432/atlas_kv
                    namespace_quota_bytes: 2097152  # 2 MiB per namespace
                    global_quota_bytes: 16777216   # 16 MiB total
                    pool:
                      size: 10
                      max_overflow: 20
                      timeout: 30
            """);
        var configuration = new ConfigurationManager();
        configuration.AddKvStoreConfiguration(directory.FullName, _ => null);

        var options = Bind(configuration);
        var postgres = BindPostgres(configuration);

        Assert.Equal("postgres", options.DefaultAdapter);
        Assert.Equal("postgresql+psycopg://atlas:atlas@db.example.com:5432/atlas_kv", postgres.Url);
        Assert.Equal(2097152, postgres.NamespaceQuotaBytes);
        Assert.Equal(16777216, postgres.GlobalQuotaBytes);
        Assert.Equal((10, 20, 30), (postgres.Pool.Size, postgres.Pool.MaxOverflow, postgres.Pool.Timeout));
    }

    [Theory]
    [InlineData(null, "tools:kv_store:adapters:postgres:url is required")]
    [InlineData("namespace_quota_bytes=0", "tools:kv_store:adapters:postgres:namespace_quota_bytes must be a positive number of bytes")]
    [InlineData("global_quota_bytes=-1", "tools:kv_store:adapters:postgres:global_quota_bytes must be a positive number")]
    [InlineData("pool:size=0", "tools:kv_store:adapters:postgres:pool:size must be positive")]
    [InlineData("pool:timeout=0", "tools:kv_store:adapters:postgres:pool:timeout must be a positive number of seconds, at most 1024")]
    // Out of Npgsql's range: reported as settings, not thrown by the connection string builder.
    [InlineData("pool:timeout=2000", "tools:kv_store:adapters:postgres:pool:timeout must be a positive number of seconds, at most 1024")]
    [InlineData("pool:size=-1", "tools:kv_store:adapters:postgres:pool:size must be positive")]
    // What binding would drop without a word, leaving the quota with no threshold events.
    [InlineData("quota_thresholds:1=0.9x", "tools:kv_store:adapters:postgres:quota_thresholds:1 must be a number, not '0.9x'")]
    [InlineData("quota_thresholds=0.5", "tools:kv_store:adapters:postgres:quota_thresholds must be a list, not the single value '0.5'")]
    [InlineData("purge_interval_seconds=86401", "tools:kv_store:adapters:postgres:purge_interval_seconds must be a positive number of seconds, at most 86400")]
    [InlineData("request_retention_seconds=3153600001", "tools:kv_store:adapters:postgres:request_retention_seconds must be a positive number of seconds, at most 3153600000 (100 years)")]
    [InlineData("outbox_publish_timeout_seconds=0", "tools:kv_store:adapters:postgres:outbox_publish_timeout_seconds must be a positive number of seconds, at most 3600")]
    [InlineData("url=mysql://u@h/db", "tools:kv_store:adapters:postgres:url is not a PostgreSQL URL")]
    public void Invalid_configuration_fails_validation_naming_the_key(string? setting, string message)
    {
        var settings = new Dictionary<string, string?> { [$"{PostgresKey}:url"] = setting is null ? "" : "postgresql://u@localhost/db" };
        if (setting is not null)
        {
            var (key, value) = (setting.Split('=')[0], setting.Split('=')[1]);
            settings[$"{PostgresKey}:{key}"] = value;
        }

        var error = Assert.Throws<OptionsValidationException>(() => Validate(settings));

        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void A_max_ttl_past_what_the_stores_hold_fails_validation_naming_the_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
            [$"{KvLimits.Section}:max_ttl_seconds"] = "1e13", // PostgreSQL: interval out of range
        }).Build();
        using var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddKvStore(configuration).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<KvLimits>>().Value);

        Assert.Contains("tools:kv_store:limits:max_ttl_seconds must be a positive number of seconds, at most 3153600000 (100 years)", error.Message);
    }

    [Fact]
    public void An_unknown_limit_fails_validation_naming_the_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
            [$"{KvLimits.Section}:max_ttl"] = "60",
        }).Build();
        using var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddKvStore(configuration).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<KvLimits>>().Value);

        Assert.Equal("tools:kv_store:limits:max_ttl is not a setting the worker reads (tools:kv_store:limits takes "
            + "max_namespace_length, max_key_length, max_ttl_seconds, max_value_depth, max_integer_digits)", Assert.Single(error.Failures));
    }

    [Fact]
    public void An_unknown_default_adapter_fails_validation_naming_the_key()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Validate(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
            ["tools:kv_store:default_adapter"] = "redis",
        }));

        Assert.Contains("tools:kv_store:default_adapter must name a registered adapter (postgres), not 'redis'", error.Message);
    }

    [Fact]
    public async Task The_worker_refuses_to_start_with_invalid_configuration_and_names_the_key()
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
            [$"{PostgresKey}:namespace_quota_bytes"] = "-5",
        });

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        Assert.Contains("environment variable tools__kv_store__adapters__postgres__namespace_quota_bytes must be a positive number of bytes", worker.Output);
    }

    /// <summary>The worker's options and the postgres provider's, validated as at start-up.</summary>
    [Theory]
    [InlineData("abc", "environment variable ATLAS_KV_NAMESPACE_QUOTA_BYTES (tools:kv_store:adapters:postgres:namespace_quota_bytes) must be a whole number, not 'abc'")]
    [InlineData("-5", "environment variable ATLAS_KV_NAMESPACE_QUOTA_BYTES (tools:kv_store:adapters:postgres:namespace_quota_bytes) must be a positive number of bytes")]
    public async Task An_invalid_value_ends_start_up_with_exit_2_and_one_line_naming_the_variable_without_a_stack_trace(string value, string message)
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
        }, rawEnvironment: new Dictionary<string, string?> { ["ATLAS_KV_NAMESPACE_QUOTA_BYTES"] = value });

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        Assert.Equal($"Invalid configuration:\n  {message}", worker.Output.Trim().ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task A_misspelt_setting_ends_start_up_with_exit_2_naming_it_as_written()
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
            ["RabbitMq:Hostname"] = "rmq1",
        });

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        Assert.Equal("Invalid configuration:\n  environment variable RabbitMq__Hostname is not a setting the worker reads "
            + "(RabbitMq takes Host, Port, Hosts, VirtualHost, Username, Password, PrefetchCount, QueueType)", worker.Output.Trim().ReplaceLineEndings("\n"));
    }

    /// <summary>Settings read while the host is put together, before any options are validated.</summary>
    [Theory]
    [InlineData("Worker:ShutdownTimeoutSeconds", "0", "environment variable Worker__ShutdownTimeoutSeconds must be a positive number of seconds, at most 3600")]
    [InlineData("Worker:ShutdownTimeoutSeconds", "abc", "environment variable Worker__ShutdownTimeoutSeconds must be a number, not 'abc'")]
    [InlineData("Health:Port", "abc", "environment variable Health__Port must be a whole number, not 'abc'")]
    [InlineData("Metrics:Prometheus", "maybe", "environment variable Metrics__Prometheus must be true or false, not 'maybe'")]
    public async Task A_host_setting_of_the_wrong_kind_ends_start_up_with_exit_2_naming_it_without_a_stack_trace(string key, string value, string message)
    {
        using var worker = WorkerProcess.Start(new Dictionary<string, string?>
        {
            [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
            ["Health:Port"] = "18099",
            [key] = value,
        });

        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        Assert.Equal($"Invalid configuration:\n  {message}", worker.Output.Trim().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void A_config_yaml_that_does_not_parse_is_explained_with_its_path_and_line()
    {
        var directory = Directory.CreateTempSubdirectory();
        File.WriteAllText(Path.Combine(directory.FullName, "config.yaml"), "tools:\n  kv_store:\n    default_adapter: [postgres\n");
        var configuration = new ConfigurationManager();

        var error = Record.Exception(() => configuration.AddKvStoreConfiguration(directory.FullName, _ => null));

        Assert.Equal(
            $"Failed to load configuration from file '{Path.Combine(directory.FullName, "config.yaml")}': line 4, column 1: While parsing a flow sequence, did not find expected ',' or ']'.",
            Assert.Single(ConfigurationErrors.Explain(error!, configuration)!));
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task An_appsettings_file_that_does_not_parse_ends_start_up_with_exit_2_and_one_line_naming_it()
    {
        // An environment of its own, so no other worker of the test run reads the broken file.
        var environment = "Broken" + Guid.NewGuid().ToString("N")[..8];
        var file = Path.Combine(AppContext.BaseDirectory, $"appsettings.{environment}.json");
        File.WriteAllText(file, """{"tools": {""");
        try
        {
            using var worker = WorkerProcess.Start(new Dictionary<string, string?>
            {
                [$"{PostgresKey}:url"] = "postgresql://u@localhost/db",
                ["DOTNET_ENVIRONMENT"] = environment,
            });

            await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal(2, worker.ExitCode);
            Assert.Equal($"Invalid configuration:\n  Failed to load configuration from file '{file}': Expected depth to be zero at the end of the JSON payload. " +
                "There is an open JSON object or array that should be closed. LineNumber: 0 | BytePositionInLine: 11.",
                worker.Output.Trim().ReplaceLineEndings("\n"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Settings_are_named_as_written_in_config_yaml_appsettings_and_the_environment()
    {
        var directory = Directory.CreateTempSubdirectory();
        File.WriteAllText(Path.Combine(directory.FullName, "config.yaml"), "tools:\n  kv_store:\n    adapters:\n      postgres:\n        pool:\n          size: lots\n");
        File.WriteAllText(Path.Combine(directory.FullName, "appsettings.json"), """{"tools":{"kv_store":{"request_timeout_seconds":"soon"}}}""");
        var configuration = new ConfigurationManager();
        configuration.AddJsonFile(Path.Combine(directory.FullName, "appsettings.json"));
        configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["tools:kv_store:limits:max_key_length"] = "x" });
        configuration.AddKvStoreConfiguration(directory.FullName, name => name == "ATLAS_KV_POOL_TIMEOUT" ? "7" : null);

        Assert.Equal("config.yaml key tools.kv_store.adapters.postgres.pool.size",
            ConfigurationErrors.AsWritten("tools:kv_store:adapters:postgres:pool:size", configuration));
        Assert.Equal("appsettings.json key tools:kv_store:request_timeout_seconds",
            ConfigurationErrors.AsWritten("tools:kv_store:request_timeout_seconds", configuration));
        Assert.Equal("environment variable ATLAS_KV_POOL_TIMEOUT (tools:kv_store:adapters:postgres:pool:timeout)",
            ConfigurationErrors.AsWritten("tools:kv_store:adapters:postgres:pool:timeout", configuration));
        Assert.Equal("tools:kv_store:limits:max_key_length", ConfigurationErrors.AsWritten("tools:kv_store:limits:max_key_length", configuration));
        Assert.Equal("tools:kv_store:unset", ConfigurationErrors.AsWritten("tools:kv_store:unset", configuration));
    }

    internal static KvStoreOptions Validate(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddKvStore(configuration)
            .BuildServiceProvider();
        _ = services.GetRequiredService<IOptions<PostgresAdapterOptions>>().Value;
        return services.GetRequiredService<IOptions<KvStoreOptions>>().Value;
    }

    [Fact]
    public void A_value_of_the_wrong_type_names_the_key()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [$"{PostgresKey}:namespace_quota_bytes"] = "lots" })
            .Build();

        var error = Assert.Throws<InvalidOperationException>(() => BindPostgres(configuration));

        Assert.Contains($"{PostgresKey}:namespace_quota_bytes", error.Message);
    }

    /// <summary>What reading <typeparamref name="TOptions"/> throws (null: nothing) when the worker's configuration holds only <paramref name="key"/>, and that configuration.</summary>
    private static (Exception? Error, IConfiguration Configuration) ReadWithOnly<TOptions>(string key, string value) where TOptions : class
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value }).Build();
        using var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddKvWorkerOptions().BuildServiceProvider();
        return (Record.Exception(() => services.GetRequiredService<IOptions<TOptions>>().Value), configuration);
    }

    private static PostgresAdapterOptions BindPostgres(IConfiguration configuration) =>
        Bind<PostgresAdapterOptions>(configuration, PostgresAdapterOptions.Section);

    private static KvStoreOptions Bind(IConfiguration configuration) => Bind<KvStoreOptions>(configuration, KvStoreOptions.Section);

    private static TOptions Bind<TOptions>(IConfiguration configuration, string section) where TOptions : class =>
        new ServiceCollection()
            .AddSingleton(configuration)
            .AddOptions<TOptions>().BindConfiguration(section).Services
            .BuildServiceProvider()
            .GetRequiredService<IOptions<TOptions>>().Value;
}
