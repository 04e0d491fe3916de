using System.Diagnostics;
using KvWorker.Messaging;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// A database, a RabbitMQ virtual host of its own, the worker running in
/// process against both, and clients of both kinds. Shared by a collection.
/// </summary>
public sealed class WorkerFixture : IAsyncLifetime
{
    private readonly string _name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
    private IHost? _worker;
    private IBusControl? _clientBus;

    public DatabaseFixture Database { get; } = new();
    public Uri Broker { get; private set; } = null!;
    public string VirtualHost => _name;

    /// <summary>The broker URI including this fixture's virtual host.</summary>
    public Uri AmqpUri => new UriBuilder(Broker) { Path = "/" + Uri.EscapeDataString(_name) }.Uri;

    public async Task InitializeAsync()
    {
        Broker = await TestServers.RabbitMqAsync();
        await TestServers.CreateVirtualHostAsync(_name);
        await Database.InitializeAsync();
        _worker = BuildWorker(WorkerSettings());
        await _worker.StartAsync();

        var credentials = Broker.UserInfo.Split(':');
        _clientBus = Bus.Factory.CreateUsingRabbitMq(rabbit => rabbit.Host(Broker.Host, (ushort)Broker.Port, _name, host =>
        {
            host.Username(Uri.UnescapeDataString(credentials[0]));
            host.Password(Uri.UnescapeDataString(credentials[1]));
        }));
        await _clientBus.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_clientBus is not null) await _clientBus.StopAsync();
        if (_worker is not null)
        {
            await _worker.StopAsync();
            _worker.Dispose();
        }
        await Database.DisposeAsync();
        await TestServers.DeleteVirtualHostAsync(_name);
    }

    /// <summary>A MassTransit request client for one operation's queue.</summary>
    public IRequestClient<T> Client<T>(string queue) where T : class =>
        _clientBus!.CreateRequestClient<T>(new Uri($"queue:{queue}"), RequestTimeout.After(s: 30));

    public RawRpcClient RawClient() => RawRpcClient.Connect(AmqpUri);

    /// <summary>Configuration keys that point a worker at this fixture's database and virtual host.</summary>
    public Dictionary<string, string?> WorkerSettings(IDictionary<string, string?>? overrides = null)
    {
        var credentials = Broker.UserInfo.Split(':');
        var settings = new Dictionary<string, string?>
        {
            ["tools:kv_store:adapters:postgres:url"] = Database.ConnectionString,
            ["RabbitMq:Host"] = Broker.Host,
            ["RabbitMq:Port"] = Broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RabbitMq:VirtualHost"] = _name,
            ["RabbitMq:Username"] = Uri.UnescapeDataString(credentials[0]),
            ["RabbitMq:Password"] = Uri.UnescapeDataString(credentials[1]),
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        return settings;
    }

    /// <summary>The worker exactly as Program.cs builds it, with test settings on top.</summary>
    public static IHost BuildWorker(IDictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
        builder.AddKvWorker();
        builder.Configuration.AddInMemoryCollection(settings);
        return builder.Build();
    }

    /// <summary>Starts the worker as a separate OS process (a replica), configured through environment variables.</summary>
    public Process StartWorkerProcess(IDictionary<string, string?>? overrides = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "KvWorker.dll"));
        foreach (var (key, value) in WorkerSettings(overrides))
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a worker process");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits until a queue has the given number of consumers (replicas that are ready).</summary>
    public async Task WaitForConsumersAsync(string queue, int consumers, TimeSpan timeout)
    {
        using var raw = RawClient();
        var deadline = DateTime.UtcNow + timeout;
        while (await raw.ConsumerCountAsync(queue) < consumers)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{queue} did not reach {consumers} consumers within {timeout}");
            await Task.Delay(200);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class WorkerCollection : ICollectionFixture<WorkerFixture>
{
    public const string Name = "worker";
}
