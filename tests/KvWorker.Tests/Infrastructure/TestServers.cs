using System.Diagnostics;
using Npgsql;
using Testcontainers.PostgreSql;
using Testcontainers.RabbitMq;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// The real servers the tests run against: the locally started ones named by
/// KV_TEST_POSTGRES / KV_TEST_RABBITMQ (scripts/test.sh sets both), or
/// containers when those are unset. Without either, the tests fail loudly.
/// </summary>
public static class TestServers
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PostgreSqlContainer? _postgresContainer;
    private static RabbitMqContainer? _rabbitContainer;

    /// <summary>An Npgsql connection string for a superuser, to create one database per collection.</summary>
    public static async Task<string> PostgresAdminAsync()
    {
        var configured = Environment.GetEnvironmentVariable("KV_TEST_POSTGRES");
        if (!string.IsNullOrEmpty(configured)) return configured;
        await Gate.WaitAsync();
        try
        {
            if (_postgresContainer is null)
            {
                var container = new PostgreSqlBuilder("postgres:15").Build();
                await container.StartAsync();
                _postgresContainer = container;
            }
            return _postgresContainer.GetConnectionString();
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The broker's AMQP URI without a virtual host, e.g. amqp://guest:guest@127.0.0.1:5672/.</summary>
    public static async Task<Uri> RabbitMqAsync()
    {
        var configured = Environment.GetEnvironmentVariable("KV_TEST_RABBITMQ");
        if (!string.IsNullOrEmpty(configured)) return new Uri(configured);
        await Gate.WaitAsync();
        try
        {
            if (_rabbitContainer is null)
            {
                var container = new RabbitMqBuilder("rabbitmq:3.13-management").WithUsername("guest").WithPassword("guest").Build();
                await container.StartAsync();
                _rabbitContainer = container;
            }
            return new Uri(_rabbitContainer.GetConnectionString());
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Creates a fresh database with the worker's schema; returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string name)
    {
        var connectionString = await CreateEmptyDatabaseAsync(name);
        await using (var dataSource = NpgsqlDataSource.Create(connectionString))
            await PostgresSchema.MigrateAsync(dataSource, _ => { }, CancellationToken.None);
        return connectionString;
    }

    public static async Task<string> CreateEmptyDatabaseAsync(string name)
    {
        var admin = await PostgresAdminAsync();
        await using (var dataSource = NpgsqlDataSource.Create(admin))
        await using (var command = dataSource.CreateCommand($"CREATE DATABASE \"{name}\""))
            await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
    }

    public static async Task DropDatabaseAsync(string name)
    {
        NpgsqlConnection.ClearAllPools();
        await using var dataSource = NpgsqlDataSource.Create(await PostgresAdminAsync());
        await KvWorker.Bench.Deployment.DropDatabaseAsync(dataSource, name);
    }

    /// <summary>Creates a virtual host so each collection has its own kv_* queues.</summary>
    public static async Task CreateVirtualHostAsync(string name)
    {
        if (_rabbitContainer is not null)
        {
            await _rabbitContainer.ExecAsync(["rabbitmqctl", "add_vhost", name]);
            await _rabbitContainer.ExecAsync(["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"]);
            return;
        }
        await RabbitMqCtlAsync("add_vhost", name);
        await RabbitMqCtlAsync("set_permissions", "-p", name, "guest", ".*", ".*", ".*");
    }

    public static async Task DeleteVirtualHostAsync(string name)
    {
        if (_rabbitContainer is not null)
            await _rabbitContainer.ExecAsync(["rabbitmqctl", "delete_vhost", name]);
        else
            await RabbitMqCtlAsync("delete_vhost", name);
    }

    /// <summary>Creates a broker user with full permissions on one virtual host: a caller identity for policy tests.</summary>
    public static async Task CreateUserAsync(string name, string password, string virtualHost)
    {
        await RabbitMqCtlAsync("add_user", name, password);
        await RabbitMqCtlAsync("set_permissions", "-p", virtualHost, name, ".*", ".*", ".*");
    }

    public static Task DeleteUserAsync(string name) => RabbitMqCtlAsync("delete_user", name);

    private static async Task RabbitMqCtlAsync(params string[] arguments)
    {
        if (_rabbitContainer is not null)
        {
            var result = await _rabbitContainer.ExecAsync(["rabbitmqctl", .. arguments]);
            if (result.ExitCode != 0)
                throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} failed: {result.Stdout}{result.Stderr}");
            return;
        }
        var start = new ProcessStartInfo("rabbitmqctl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") + ":/usr/sbin:/usr/lib/rabbitmq/bin";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("rabbitmqctl did not start");
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} failed: {output}");
    }
}
