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

    /// <summary>The broker user of <see cref="Broker"/> and its password, as the URI holds them escaped.</summary>
    public (string User, string Password) BrokerUser
    {
        get
        {
            var credentials = Broker.UserInfo.Split(':').Select(Uri.UnescapeDataString).ToArray();
            return (credentials[0], credentials[1]);
        }
    }

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

    public Task<RawRpcClient> RawClientAsync(bool sendUserId = true) => RawRpcClient.ConnectAsync(AmqpUri, sendUserId);

    /// <summary>A plain client connected (and identified) as another broker user.</summary>
    public Task<RawRpcClient> RawClientAsync(string user, string password, bool sendUserId = true) =>
        RawRpcClient.ConnectAsync(new UriBuilder(AmqpUri) { UserName = user, Password = password }.Uri, sendUserId);

    /// <summary>The persona the fixture's broker user acts as: both flags, every namespace.</summary>
    public const string TestPersona = "tester";

    /// <summary>
    /// Configuration keys that point a worker at this fixture's database and virtual host,
    /// and grant the broker user the <see cref="TestPersona"/> persona.
    /// </summary>
    public Dictionary<string, string?> WorkerSettings(IDictionary<string, string?>? overrides = null)
    {
        var (user, password) = BrokerUser;
        var settings = new Dictionary<string, string?>
        {
            [$"tools:kv_store:personas:{TestPersona}:flags:0"] = KvWorker.Contracts.KvStoreManifest.ReadFlag,
            [$"tools:kv_store:personas:{TestPersona}:flags:1"] = KvWorker.Contracts.KvStoreManifest.WriteFlag,
            [$"tools:kv_store:identities:{user}:personas:0"] = TestPersona,
            [$"tools:kv_store:identities:{user}:default_persona"] = TestPersona,
            ["tools:kv_store:adapters:postgres:url"] = Database.ConnectionString,
            ["RabbitMq:Host"] = Broker.Host,
            ["RabbitMq:Port"] = Broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RabbitMq:VirtualHost"] = _name,
            ["RabbitMq:Username"] = user,
            ["RabbitMq:Password"] = password,
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        return settings;
    }

    /// <summary>
    /// A MassTransit client bus connected as a broker user, stamping that user as
    /// the AMQP user_id of everything it sends (as the README shows).
    /// </summary>
    public async Task<IBusControl> StartClientBusAsync(string user, string password, Action<IRabbitMqBusFactoryConfigurator>? configure = null)
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(rabbit =>
        {
            rabbit.Host(Broker.Host, (ushort)Broker.Port, VirtualHost, host =>
            {
                host.Username(user);
                host.Password(password);
            });
            rabbit.ConfigureSend(send => send.UseSendExecute(context =>
            {
                if (context.TryGetPayload<RabbitMqSendContext>(out var amqp)) amqp.BasicProperties.UserId = user;
            }));
            configure?.Invoke(rabbit);
        });
        await bus.StartAsync();
        return bus;
    }

    /// <summary>A MassTransit client bus connected as <see cref="BrokerUser"/>.</summary>
    public Task<IBusControl> StartClientBusAsync(Action<IRabbitMqBusFactoryConfigurator>? configure = null) =>
        StartClientBusAsync(BrokerUser.User, BrokerUser.Password, configure);

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
public class WorkerFixture : BrokerFixture
{
    private IHost? _worker;
    private IBusControl? _clientBus;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _worker = BuildWorker(WorkerSettings(await PrepareWorkerAsync()));
        await _worker.StartAsync();

        _clientBus = await StartClientBusAsync(rabbit =>
        {
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

    /// <summary>Runs before the worker starts; returns settings to put over the test defaults.</summary>
    protected virtual Task<IDictionary<string, string?>?> PrepareWorkerAsync() => Task.FromResult<IDictionary<string, string?>?>(null);

    /// <summary>A MassTransit request client for one operation's queue.</summary>
    public IRequestClient<T> Client<T>(string queue) where T : class =>
        _clientBus!.CreateRequestClient<T>(new Uri($"queue:{queue}"), RequestTimeout.After(s: 30));
}

[CollectionDefinition(Name)]
public sealed class WorkerCollection : ICollectionFixture<WorkerFixture>
{
    public const string Name = "worker";
}
