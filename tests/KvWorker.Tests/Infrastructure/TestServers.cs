using System.Diagnostics;
using Testcontainers.RabbitMq;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// The real servers the tests run against: the locally started ones named by
/// KV_TEST_POSTGRES / KV_TEST_RABBITMQ (scripts/test.sh sets both), or
/// containers when those are unset. Without either, the tests fail loudly.
/// PostgreSQL's part is TestServers.Postgres.cs, which the Redis tests share.
/// </summary>
public static partial class TestServers
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static RabbitMqContainer? _rabbitContainer;

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
