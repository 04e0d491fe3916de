using KvWorker.Tests.Telemetry;
using Npgsql;

namespace KvWorker.Tests.Integration;

/// <summary>A replica whose PostgreSQL, RabbitMQ virtual host or health port is not there, or not usable, when it starts.</summary>
public sealed class StartupTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    /// <summary>The fixture's database, reached through 127.0.0.1 on <paramref name="port"/>.</summary>
    private string DatabaseThrough(int port) =>
        new NpgsqlConnectionStringBuilder(broker.Database.ConnectionString) { Host = "127.0.0.1", Port = port }.ConnectionString;

    /// <summary>A replica the fixture stops at the end, with its health endpoint on <paramref name="healthPort"/> (0: none).</summary>
    private WorkerProcess StartWorker(string connectionString, int healthPort = 0) =>
        broker.StartWorkerProcess(new Dictionary<string, string?>
        {
            ["tools:kv_store:adapters:postgres:url"] = connectionString,
            ["Health:Port"] = healthPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    /// <summary>The replica ended start-up with <paramref name="exitCode"/>, its output ending with <paramref name="lastLines"/>, and no stack trace.</summary>
    private static async Task AssertStartUpEndsAsync(WorkerProcess worker, int exitCode, string lastLines)
    {
        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(worker.ExitCode == exitCode, $"exit code {worker.ExitCode}\n{worker.Output}");
        Assert.EndsWith(lastLines, worker.Output.Trim().ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", worker.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Failed to stop bus", worker.Output, StringComparison.Ordinal); // it never started
    }

    private static async Task WaitForOutputAsync(WorkerProcess worker, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!worker.Output.Contains(text, StringComparison.Ordinal))
        {
            Assert.False(worker.HasExited || DateTime.UtcNow > deadline, $"no '{text}' in the output:\n{worker.Output}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_replica_started_before_postgresql_waits_for_it_saying_so_then_serves()
    {
        var port = HealthTests.FreePort();
        var healthPort = HealthTests.FreePort();
        var worker = StartWorker(DatabaseThrough(port), healthPort);

        await WaitForOutputAsync(worker, $"Cannot reach PostgreSQL at 127.0.0.1:{port} (database ");
        var waiting = worker.Output;
        // Meanwhile the process is live (an orchestrator leaves it be) and not ready (it gets no traffic).
        using (var http = new HttpClient())
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{healthPort}/health/live"))).StatusCode);
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri($"http://127.0.0.1:{healthPort}/health/ready"))).StatusCode);
        }
        // PostgreSQL comes up on that port.
        var server = new NpgsqlConnectionStringBuilder(broker.Database.ConnectionString);
        using var postgres = new TcpForwarder(server.Host!, server.Port, listenPort: port);
        await broker.WaitForConsumersAsync(KvOperations.Set.Queue, 1, TimeSpan.FromSeconds(60));
        await using var client = await broker.RawClientAsync();
        var reply = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = "ns-" + Guid.NewGuid().ToString("N"), key = "k", value = 1 });

        Assert.True(reply.TryGetProperty("version", out _), reply.GetRawText());
        Assert.DoesNotContain("   at ", waiting, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replica_stopped_while_waiting_for_postgresql_exits_with_one_line_and_no_stack_trace()
    {
        var port = HealthTests.FreePort();
        var worker = StartWorker(DatabaseThrough(port));
        await WaitForOutputAsync(worker, "Cannot reach PostgreSQL");

        worker.Terminate();

        await AssertStartUpEndsAsync(worker, 3,
            $"Cannot start: stopped while waiting for PostgreSQL at 127.0.0.1:{port} (database {new NpgsqlConnectionStringBuilder(broker.Database.ConnectionString).Database})");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the health endpoint, already listening, is disposed with the host that failed to start
    public async Task A_database_postgresql_does_not_have_ends_start_up_with_exit_3_and_one_line_naming_it(bool healthEndpoint)
    {
        var missing = "kvtest_missing_" + Guid.NewGuid().ToString("N")[..8];
        var server = new NpgsqlConnectionStringBuilder(broker.Database.ConnectionString) { Database = missing };
        var worker = StartWorker(server.ConnectionString, healthEndpoint ? HealthTests.FreePort() : 0);

        await AssertStartUpEndsAsync(worker, 3,
            $"Cannot start: PostgreSQL at {server.Host}:{server.Port} (database {missing}) refused the worker: 3D000: database \"{missing}\" does not exist");
    }

    [Fact]
    public async Task A_virtual_host_rabbitmq_does_not_have_is_logged_once_while_the_replica_retries()
    {
        var missing = "kvtest_missing_" + Guid.NewGuid().ToString("N")[..8];
        var worker = broker.StartWorkerProcess(new Dictionary<string, string?> { ["RabbitMq:VirtualHost"] = missing });

        await WaitForOutputAsync(worker, "Cannot consume from RabbitMQ");
        // MassTransit retries every queue every few seconds: the warning is not repeated for each.
        await Task.Delay(TimeSpan.FromSeconds(8));

        var line = Assert.Single(worker.Output.Split('\n'), line => line.Contains("Cannot consume from RabbitMQ", StringComparison.Ordinal));
        Assert.Contains($"virtual host {missing}; retrying: ", line, StringComparison.Ordinal);
        Assert.Contains($"vhost {missing} not found", line, StringComparison.Ordinal);
        Assert.False(worker.HasExited, worker.Output);
    }

    [Fact]
    public async Task A_replica_requiring_synchronous_replication_of_a_server_without_a_standby_says_so_at_start_up()
    {
        var worker = broker.StartWorkerProcess(new Dictionary<string, string?>
        {
            ["tools:kv_store:adapters:postgres:require_synchronous_replication"] = "true",
        });

        await WaitForOutputAsync(worker, "Application started");
        var server = new NpgsqlConnectionStringBuilder(broker.Database.ConnectionString);

        Assert.Contains(worker.Output.Split('\n'), line => line.Contains(
            $"WRN] PostgreSQL at {server.Host}:{server.Port} (database {server.Database}) does not replicate synchronously "
            + "(synchronous_standby_names '', synchronous_commit on): under require_synchronous_replication, "
            + "writes are answered StoreUnavailableError until it does", StringComparison.Ordinal));
        Assert.False(worker.HasExited, worker.Output);
    }

    [Fact]
    public async Task An_unknown_key_in_the_postgres_providers_section_is_warned_about_and_the_replica_starts()
    {
        // The section is the original tool's, where ATLAS's own adapter may keep keys of its own: not refused.
        var worker = broker.StartWorkerProcess(new Dictionary<string, string?>
        {
            ["tools:kv_store:adapters:postgres:pool:sise"] = "5",
            ["tools:kv_store:adapters:postgres:namespace_quota_byte"] = "7",
        });

        // Once started, the schema is up to date and the bus started (others of this class may be consuming already).
        await WaitForOutputAsync(worker, "Application started");
        var lines = worker.Output.Split('\n');

        Assert.Contains(lines, line => line.Contains("WRN] tools:kv_store:adapters:postgres:pool:sise is not a setting the worker reads "
            + "(tools:kv_store:adapters:postgres:pool takes size, max_overflow, timeout); ignored", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.Contains("WRN] tools:kv_store:adapters:postgres:namespace_quota_byte is not a setting the worker reads", StringComparison.Ordinal));
        Assert.False(worker.HasExited, worker.Output);
    }

    [Fact]
    public async Task An_unknown_key_directly_under_tools_kv_store_is_warned_about_and_the_replica_starts()
    {
        // ATLAS's configuration shares the block: not refused, but a misspelt setting must not pass in silence.
        var worker = broker.StartWorkerProcess(new Dictionary<string, string?>
        {
            ["tools:kv_store:request_timeout_second"] = "30",
            // Its default: this replica may serve the other tests of the class.
            ["tools:kv_store:limits:max_key_length"] = "512",
        });

        await WaitForOutputAsync(worker, "Application started");
        var lines = worker.Output.Split('\n');

        Assert.Contains(lines, line => line.Contains("WRN] tools:kv_store:request_timeout_second is not a setting the worker reads "
            + "(tools:kv_store takes default_adapter, request_timeout_seconds, personas, identities, anonymous, limits, adapters); ignored",
            StringComparison.Ordinal));
        // Keys of the sections other options read are theirs, not this warning's.
        Assert.DoesNotContain(lines, line => line.Contains("tools:kv_store:limits", StringComparison.Ordinal));
        Assert.False(worker.HasExited, worker.Output);
    }

    [Fact]
    public async Task A_broker_that_cannot_be_reached_is_logged_once_without_a_stack_trace_while_the_replica_retries()
    {
        var port = HealthTests.FreePort();
        var worker = broker.StartWorkerProcess(new Dictionary<string, string?> { ["RabbitMq:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) });

        await WaitForOutputAsync(worker, "Cannot consume from RabbitMQ");
        // MassTransit tries again every few seconds, and logs each failed attempt with a stack trace.
        await Task.Delay(TimeSpan.FromSeconds(8));

        var line = Assert.Single(worker.Output.Split('\n'), line => line.Contains("Cannot consume from RabbitMQ", StringComparison.Ordinal));
        Assert.Contains($":{port}), virtual host ", line, StringComparison.Ordinal);
        Assert.EndsWith("retrying: Connection refused", line.TrimEnd(), StringComparison.Ordinal);
        Assert.DoesNotContain("Connection Failed", worker.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", worker.Output, StringComparison.Ordinal);
        Assert.False(worker.HasExited, worker.Output);
    }

    [Theory]
    [InlineData("true")]
    [InlineData("false")] // without /metrics the health endpoint meets the taken port itself, as the host starts
    public async Task A_health_port_another_process_listens_on_ends_start_up_with_exit_2_and_one_line_naming_it(string prometheus)
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Any, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var worker = broker.StartWorkerProcess(new Dictionary<string, string?>
        {
            ["Health:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Metrics:Prometheus"] = prometheus,
        });
        await AssertStartUpEndsAsync(worker, 2,
            $"Invalid configuration:\n  environment variable Health__Port is {port}, but the worker cannot listen on it: Address already in use");
    }
}
