using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace KvWorker.Tests.Telemetry;

/// <summary>The HTTP health endpoint and the health command, against a worker with both servers up.</summary>
[Collection(WorkerCollection.Name)]
public sealed class HealthTests(WorkerFixture worker)
{
    internal static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Ready_and_live_answer_200_when_postgres_and_rabbitmq_are_up()
    {
        var port = FreePort();
        using var host = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?> { ["Health:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
        await host.StartAsync();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20), BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            var live = await http.GetAsync(new Uri("health/live", UriKind.Relative));
            var ready = await ReadyAsync(http);
            var probe = await ProbeAsync(port);

            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            var checks = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("checks");
            Assert.Equal("Healthy", checks.GetProperty("postgres").GetProperty("status").GetString());
            Assert.Equal("Healthy", checks.GetProperty("masstransit-bus").GetProperty("status").GetString());
            Assert.Equal(0, probe);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Ready_answers_503_naming_redis_when_the_redis_provider_is_configured_and_unreachable()
    {
        var port = FreePort();
        using var host = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?>
        {
            ["Health:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["tools:kv_store:adapters:redis:url"] = $"127.0.0.1:{FreePort()}", // nothing listens there
        }));
        await host.StartAsync();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20), BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            // Once the bus is up, Redis is all that is missing.
            HttpResponseMessage ready;
            JsonElement checks;
            var deadline = DateTime.UtcNow.AddSeconds(20);
            do
            {
                ready = await http.GetAsync(new Uri("health/ready", UriKind.Relative));
                checks = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("checks");
            }
            while (checks.GetProperty("masstransit-bus").GetProperty("status").GetString() != "Healthy" && DateTime.UtcNow < deadline);

            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Equal("Healthy", checks.GetProperty("postgres").GetProperty("status").GetString());
            Assert.Equal("Healthy", checks.GetProperty("masstransit-bus").GetProperty("status").GetString());
            Assert.Equal("Unhealthy", checks.GetProperty("redis").GetProperty("status").GetString());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Ready_reports_postgres_healthy_while_every_connection_of_the_worker_pool_is_taken()
    {
        using var host = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?>
        {
            // The smallest pool the default group commit settings accept.
            ["tools:kv_store:adapters:postgres:pool:size"] = "3",
            ["tools:kv_store:adapters:postgres:pool:max_overflow"] = "0",
            ["tools:kv_store:adapters:postgres:pool:timeout"] = "1",
        }));
        var pool = host.Services.GetRequiredService<NpgsqlDataSource>();
        await using var first = await pool.OpenConnectionAsync();
        await using var second = await pool.OpenConnectionAsync();
        await using var third = await pool.OpenConnectionAsync();
        // The pool is exhausted: a request would wait for a connection, then fail.
        await Assert.ThrowsAsync<NpgsqlException>(async () => await (await pool.OpenConnectionAsync()).DisposeAsync());

        var postgres = await PostgresCheckAsync(host);

        Assert.Equal(HealthStatus.Healthy, postgres.Status);
    }

    [Fact]
    public async Task Ready_reports_postgres_unhealthy_within_the_check_budget_when_postgresql_is_unreachable()
    {
        using var host = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?>
        {
            // Nothing listens there.
            ["tools:kv_store:adapters:postgres:url"] = new NpgsqlConnectionStringBuilder(worker.Database.ConnectionString) { Port = FreePort() }.ConnectionString,
        }));
        var elapsed = Stopwatch.StartNew();

        var postgres = await PostgresCheckAsync(host);

        Assert.Equal(HealthStatus.Unhealthy, postgres.Status);
        // Why, for /health/ready; no exception, whose stack trace would be logged at every probe.
        Assert.StartsWith("PostgreSQL unreachable: Failed to connect to 127.0.0.1:", postgres.Description);
        Assert.Null(postgres.Exception);
        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(5), $"the check took {elapsed.Elapsed}");
    }

    [Theory]
    [InlineData("70000")]
    [InlineData("-1")]
    public async Task A_port_that_is_not_a_tcp_port_stops_start_up_naming_the_key(string port)
    {
        using var host = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?> { ["Health:Port"] = port }));

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Health:Port must be a TCP port (1 to 65535), or 0 or unset for no endpoint", error.Message);
    }

    [Fact]
    public async Task The_health_command_fails_when_the_endpoint_is_off_or_not_answering()
    {
        Assert.Equal(1, await ProbeAsync(FreePort()));
        Assert.Equal(2, await ProbeAsync(0));
        Assert.Equal(2, await ProbeAsync(70000));
    }

    [Fact]
    public async Task The_health_command_refuses_a_check_other_than_live_or_ready_with_exit_code_2()
    {
        var (exitCode, error) = await ProbeAsync([$"--Health:Port={FreePort()}"], Directory.GetCurrentDirectory(), check: "redy");

        // Not "unhealthy" (1): a typo in a probe is not a worker to restart.
        Assert.Equal(2, exitCode);
        Assert.Equal("health takes live or ready, not 'redy'", error.Trim());
    }

    [Fact]
    public async Task The_health_command_refuses_a_word_after_the_check_with_exit_code_2()
    {
        var (exitCode, error) = await ProbeAsync(["extra", $"--Health:Port={FreePort()}"], Directory.GetCurrentDirectory());

        Assert.Equal(2, exitCode);
        Assert.Equal("health takes live or ready, not 'ready extra'", error.Trim());
    }

    [Fact]
    public async Task The_health_command_reads_a_setting_whose_value_is_the_next_argument()
    {
        var port = FreePort();

        var (exitCode, error) = await ProbeAsync(["--Health:Port", $"{port}"], Directory.GetCurrentDirectory());

        // The port is not taken for a second check: it was asked of, and nothing answers on it.
        Assert.Equal(1, exitCode);
        Assert.Contains($"port {port}", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_health_command_may_come_after_the_settings()
    {
        var port = FreePort();

        var (exitCode, error) = await RunAsync(["--Health:Port", $"{port}", "health", "live"], Directory.GetCurrentDirectory());

        // Probed (nothing answers on the port), not refused as an unknown command (2).
        Assert.Equal(1, exitCode);
        Assert.Contains($"port {port}", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_refuses_an_unknown_command_with_exit_code_2_instead_of_starting()
    {
        var (exitCode, error) = await RunAsync(["helth", "ready", $"--Health:Port={FreePort()}"], Directory.GetCurrentDirectory());

        Assert.Equal(2, exitCode);
        Assert.Equal("KvWorker takes settings (--Key=value) and the command health [live|ready], not 'helth'", error.Trim());
    }

    [Fact]
    public async Task The_health_command_reads_the_port_from_config_yaml_as_the_worker_does()
    {
        var directory = Directory.CreateTempSubdirectory();
        var port = FreePort();
        File.WriteAllText(Path.Combine(directory.FullName, "config.yaml"), $"Health:\n  Port: {port}\n");

        var (exitCode, error) = await ProbeAsync([], directory.FullName);

        // Not "off" (2): the port was found, and nothing answers on it.
        Assert.Equal(1, exitCode);
        Assert.Contains($"port {port}", error, StringComparison.Ordinal);
        directory.Delete(recursive: true);
    }

    [Fact]
    public async Task The_health_command_names_a_port_that_is_not_a_number_and_exits_2()
    {
        var (exitCode, error) = await ProbeAsync(["--Health:Port=abc"], Directory.GetCurrentDirectory());

        Assert.Equal(2, exitCode);
        Assert.Equal("Invalid configuration:\n  command-line argument --Health:Port must be a whole number, not 'abc'", error.Trim().ReplaceLineEndings("\n"));
    }

    /// <summary>The readiness check <c>postgres</c> of a worker that has not started: it needs no bus.</summary>
    private static async Task<HealthReportEntry> PostgresCheckAsync(IHost host) =>
        (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(check => check.Name == "postgres")).Entries["postgres"];

    /// <summary>The bus reports ready a moment after the host has started: wait for it, up to a limit.</summary>
    private static async Task<HttpResponseMessage> ReadyAsync(HttpClient http)
    {
        for (var attempt = 0; ; attempt++)
        {
            var response = await http.GetAsync(new Uri("health/ready", UriKind.Relative));
            if (response.StatusCode == HttpStatusCode.OK || attempt == 50) return response;
            await Task.Delay(200);
        }
    }

    /// <summary><c>KvWorker health ready --Health:Port=N</c>, as a container health check runs it.</summary>
    private static async Task<int> ProbeAsync(int port) => (await ProbeAsync([$"--Health:Port={port}"], Directory.GetCurrentDirectory())).ExitCode;

    private static Task<(int ExitCode, string Error)> ProbeAsync(string[] arguments, string workingDirectory, string check = "ready") =>
        RunAsync(["health", check, .. arguments], workingDirectory);

    /// <summary><c>dotnet KvWorker.dll</c> with <paramref name="arguments"/>, for a command that ends by itself.</summary>
    private static async Task<(int ExitCode, string Error)> RunAsync(string[] arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "KvWorker.dll") }.Concat(arguments))
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try { await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60)); }
        catch (TimeoutException)
        {
            // A command that started a worker instead: not left running after the test.
            process.Kill(entireProcessTree: true);
            throw;
        }
        await output;
        return (process.ExitCode, await error);
    }
}
