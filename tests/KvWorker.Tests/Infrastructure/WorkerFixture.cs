using KvWorker.Contracts;
using KvWorker.Messaging;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KvWorker.Tests.Infrastructure;

/// <summary>A database and a RabbitMQ virtual host of their own, and the means to run workers against them.</summary>
public class BrokerFixture : IAsyncLifetime
{
    private readonly string _name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
    private readonly List<WorkerProcess> _processes = [];

    public DatabaseFixture Database { get; } = new();
    public Uri Broker { get; private set; } = null!;
    public string VirtualHost => _name;

    /// <summary>The broker URI including this fixture's virtual host.</summary>
    public Uri AmqpUri => new UriBuilder(Broker) { Path = "/" + Uri.EscapeDataString(_name) }.Uri;

    public virtual async Task InitializeAsync()
    {
        Broker = await TestServers.RabbitMqAsync();
        await TestServers.CreateVirtualHostAsync(_name);
        await Database.InitializeAsync();
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var process in _processes) process.Dispose();
        await Database.DisposeAsync();
        await TestServers.DeleteVirtualHostAsync(_name);
    }

    public Task<RawRpcClient> RawClientAsync() => RawRpcClient.ConnectAsync(AmqpUri);

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
        // Before AddKvWorker, which decides from configuration which providers to register.
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddKvWorker();
        return builder.Build();
    }

    /// <summary>Starts the worker as a separate OS process (a replica), configured through environment variables.</summary>
    public WorkerProcess StartWorkerProcess(IDictionary<string, string?>? overrides = null)
    {
        var process = WorkerProcess.Start(WorkerSettings(overrides));
        _processes.Add(process);
        return process;
    }

    /// <summary>Waits until a queue has the given number of consumers (replicas that are ready).</summary>
    public async Task WaitForConsumersAsync(string queue, int consumers, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (await ConsumerCountAsync(queue) < consumers)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{queue} did not reach {consumers} consumers within {timeout}");
            await Task.Delay(200);
        }
    }

    private async Task<uint> ConsumerCountAsync(string queue)
    {
        await using var raw = await RawClientAsync();
        try
        {
            return await raw.ConsumerCountAsync(queue);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            return 0; // no worker has declared the queue yet
        }
    }
}

/// <summary>The worker running in process, and a MassTransit client bus beside the plain AMQP client.</summary>
public sealed class WorkerFixture : BrokerFixture
{
    private IHost? _worker;
    private IBusControl? _clientBus;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _worker = BuildWorker(WorkerSettings());
        await _worker.StartAsync();

        var credentials = Broker.UserInfo.Split(':');
        _clientBus = Bus.Factory.CreateUsingRabbitMq(rabbit =>
        {
            rabbit.Host(Broker.Host, (ushort)Broker.Port, VirtualHost, host =>
            {
                host.Username(Uri.UnescapeDataString(credentials[0]));
                host.Password(Uri.UnescapeDataString(credentials[1]));
            });
            // A MassTransit subscriber: the events' entity names, and plain JSON bodies.
            rabbit.ConfigureKvEvents();
            rabbit.ReceiveEndpoint("kvtest-events-" + Guid.NewGuid().ToString("N"), endpoint =>
            {
                endpoint.AutoDelete = true;
                endpoint.UseRawJsonDeserializer(RawSerializerOptions.AnyMessageType, isDefault: true);
                endpoint.Handler<NamespaceQuotaExceeded>(context =>
                {
                    QuotaEvents.Enqueue(context.Message);
                    return Task.CompletedTask;
                });
            });
        });
        await _clientBus.StartAsync();
    }

    public override async Task DisposeAsync()
    {
        if (_clientBus is not null) await _clientBus.StopAsync();
        if (_worker is not null)
        {
            await _worker.StopAsync();
            _worker.Dispose();
        }
        await base.DisposeAsync();
    }

    /// <summary>NamespaceQuotaExceeded events received by the MassTransit client bus.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<NamespaceQuotaExceeded> QuotaEvents { get; } = new();

    /// <summary>A MassTransit request client for one operation's queue.</summary>
    public IRequestClient<T> Client<T>(string queue) where T : class =>
        _clientBus!.CreateRequestClient<T>(new Uri($"queue:{queue}"), RequestTimeout.After(s: 30));
}

[CollectionDefinition(Name)]
public sealed class WorkerCollection : ICollectionFixture<WorkerFixture>
{
    public const string Name = "worker";
}
