using KvWorker.Amqp;
using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Events;
using KvWorker.Health;
using KvWorker.Pipeline;
using KvWorker.Postgres;
using KvWorker.Purge;
using KvWorker.Redis;
using KvWorker.Storage;
using KvWorker.Telemetry;
using MassTransit;
using MassTransit.Configuration;
using MassTransit.Serialization;
using Microsoft.Extensions.Options;
using Serilog;

namespace KvWorker;

public static class Extensions
{
    /// <summary>The worker's configuration sources beyond the host's: config.yaml in the working directory and the ATLAS_KV_* fallbacks.</summary>
    public static void AddKvWorkerConfiguration(this IHostApplicationBuilder builder) =>
        builder.Configuration.AddKvStoreConfiguration(Directory.GetCurrentDirectory());

    /// <summary>The worker: configuration and logging, the providers, the request pipeline and the RabbitMQ endpoints.</summary>
    public static void AddKvWorker(this IHostApplicationBuilder builder)
    {
        builder.AddKvWorkerConfiguration();
        var services = builder.Services;

        services.AddSerilog((_, logger) => logger
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            .Filter.ByExcluding(ErrorReplyFilter.IsMalformedRequestFault)
            .Filter.ByExcluding(ConsumingLog.IsUnreachableBrokerRetry)
            .Filter.ByExcluding(ConsumingLog.IsStopOfABusNeverStarted)
            // Program prints a PostgreSQL that refuses the worker at start-up as one line, and so a start-up
            // failure ConfigurationErrors explains (a taken health port): the host's own log of it has a stack trace.
            .Filter.ByExcluding(logEvent => logEvent.Exception is PostgresStartupException)
            .Filter.ByExcluding(logEvent => logEvent.Exception is { } failure
                && Serilog.Filters.Matching.FromSource("Microsoft.Extensions.Hosting")(logEvent)
                && ConfigurationErrors.Explain(failure, null) is not null)
            .WriteTo.Console(formatProvider: System.Globalization.CultureInfo.InvariantCulture));

        // First the health endpoint: it answers /health/live while the worker waits for PostgreSQL, and a
        // taken port stops start-up before any background service has started.
        services.AddKvHealth();
        // Then the postgres provider's schema is brought up to date before the bus takes messages.
        services.AddKvStore(builder.Configuration);
        services.AddMassTransit(bus =>
        {
            // MassTransit would report usage to its vendor; the worker sends nothing anywhere unasked.
            bus.DisableUsageTelemetry();
            bus.AddReceiveEndpointObserver<ConsumingLog>();
            bus.AddReceiveEndpointObserver<QueueTypeCheck>();
            bus.AddKvRequestConsumers();
            bus.UsingRabbitMq((context, rabbit) => rabbit.ConfigureKvEndpoints(context));
        });
        services.AddSingleton<IKvEventPublisher, MassTransitEventPublisher>();
        services.AddHostedService<PurgeScheduler>();

        builder.AddKvTelemetry();
    }

    /// <summary>Everything requests need but the bus: the options, the providers (postgres, and redis when configured) and the request pipeline.</summary>
    public static IServiceCollection AddKvStore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddKvWorkerOptions();
        services.AddPostgresKvStore(HealthEndpoint.ReadyTag);
        services.AddRedisKvStore(configuration, HealthEndpoint.ReadyTag);
        return services.AddKvRequestPipeline();
    }

    /// <summary>What requests go through: validation, persona policy, the providers' registry and the pipeline.</summary>
    public static IServiceCollection AddKvRequestPipeline(this IServiceCollection services)
    {
        services.AddKvStoreBasics();
        services.AddSingleton<KvCommands>();
        services.AddSingleton<PersonaPolicy>();
        services.AddSingleton<KvRequestPipeline>();
        return services;
    }

    /// <summary>One consumer per operation, from <see cref="KvOperations.All"/>.</summary>
    public static void AddKvRequestConsumers(this IRegistrationConfigurator bus)
    {
        foreach (var operation in KvOperations.All) bus.AddConsumer(KvRequestConsumer.For(operation));
    }

    /// <summary>The tools:kv_store, RabbitMq and Worker sections, validated when the host starts.</summary>
    public static IServiceCollection AddKvWorkerOptions(this IServiceCollection services)
    {
        services.AddOptions<KvStoreOptions>().BindConfiguration(KvStoreOptions.Section)
            .ValidateEach<KvStoreOptions, IEnumerable<KvStoreAdapterRegistration>>(KvStoreOptionsValidator.Validate)
            .ValidateEach<KvStoreOptions, IConfiguration>((_, configuration) =>
                KvStoreOptionsValidator.ListsWrittenAsValues(configuration).Concat(KvStoreOptionsValidator.UnknownPolicyKeys(configuration)));
        services.AddOptions<RabbitMqOptions>().BindConfiguration(RabbitMqOptions.Section).ValidateEach(options => options.Validate())
            .RefuseUnknownKeys(RabbitMqOptions.Section);
        services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section)
            .RefuseUnknownKeys(WorkerOptions.Section)
            .Validate(o => o.ShutdownTimeoutSeconds is > 0 and <= 3600,
                $"{WorkerOptions.Section}:ShutdownTimeoutSeconds must be a positive number of seconds, at most 3600")
            .ValidateOnStart();
        // Graceful shutdown: MassTransit stops consuming at once, gives the messages in
        // hand half the grace period, then cancels them (they return to the queue).
        services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
            host.ShutdownTimeout = TimeSpan.FromSeconds(worker.Value.ShutdownTimeoutSeconds));
        services.AddOptions<MassTransitHostOptions>().Configure<IOptions<WorkerOptions>>((bus, worker) =>
        {
            var grace = TimeSpan.FromSeconds(worker.Value.ShutdownTimeoutSeconds);
            bus.StopTimeout = grace * 0.9;
            bus.ConsumerStopTimeout = grace * 0.5;
        });
        return services;
    }

    /// <summary>The RabbitMQ host, the events, and one queue per operation with its consumer and error reply.</summary>
    public static void ConfigureKvEndpoints(this IRabbitMqBusFactoryConfigurator rabbit, IBusRegistrationContext context)
    {
        rabbit.ConfigureKvTransport(context);
        rabbit.ConfigureKvEvents();
        foreach (var operation in KvOperations.All)
        {
            var consumer = KvRequestConsumer.For(operation);
            rabbit.ReceiveEndpoint(operation.Queue, endpoint => endpoint.ConfigureKvEndpoint(context, e => e.ConfigureConsumer(context, consumer)));
        }
    }

    /// <summary>The RabbitMQ host, the plain JSON deserializer and the prefetch; shared with the benchmark's echo service.</summary>
    public static void ConfigureKvTransport(this IRabbitMqBusFactoryConfigurator rabbit, IBusRegistrationContext context)
    {
        var options = context.GetRequiredService<IOptions<RabbitMqOptions>>().Value;
        var nodes = options.Nodes();
        rabbit.Host(nodes[0].Host, nodes[0].Port, options.VirtualHost, host =>
        {
            host.Username(options.Username);
            host.Password(options.Password);
            if (nodes.Count == 1) return;
            // MassTransit connects to the nodes in turn, moving on when one fails. Each replica
            // starts at a random one, so replicas spread their connections over the cluster.
            var first = Random.Shared.Next(nodes.Count);
            host.UseCluster(cluster =>
            {
                for (var i = 0; i < nodes.Count; i++)
                {
                    var (name, port) = nodes[(first + i) % nodes.Count];
                    cluster.Node($"{name}:{port}");
                }
            });
        });
        // Plain JSON from any AMQP client (also when it sets no content type);
        // MassTransit clients' envelopes are still recognised by their content type.
        rabbit.UseRawJsonDeserializer(RawSerializerOptions.AnyMessageType, isDefault: true);
        // MassTransit reads requests and writes its responses and the events with these options: as deep
        // as any value the limits allow, and compact (MassTransit indents by default: an event is a sixth larger).
        rabbit.ConfigureJsonSerializerOptions(json =>
        {
            json.MaxDepth = KvJsonDepth.MaxMessage;
            json.WriteIndented = false;
            return json;
        });
        rabbit.PrefetchCount = options.PrefetchCount;
    }

    /// <summary>
    /// Events go out as plain JSON (no envelope) on durable fanout exchanges named
    /// like the event, so any AMQP subscriber can bind a queue and read them.
    /// MassTransit subscribers use the same entity names and a raw JSON deserializer.
    /// </summary>
    public static void ConfigureKvEvents(this IRabbitMqBusFactoryConfigurator rabbit)
    {
        rabbit.AddSerializer(new SystemTextJsonRawMessageSerializerFactory(RawSerializerOptions.Default), isSerializer: false);
        var configure = typeof(Extensions).GetMethod(nameof(ConfigureKvEvent), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        foreach (var eventType in KvEvents.All) configure.MakeGenericMethod(eventType).Invoke(null, [rabbit]);
    }

    private static void ConfigureKvEvent<TEvent>(IRabbitMqBusFactoryConfigurator rabbit) where TEvent : class
    {
        rabbit.Message<TEvent>(message => message.SetEntityName(KvEvents.Exchange(typeof(TEvent))));
        rabbit.Send<TEvent>(send => send.UseSerializer(SystemTextJsonRawMessageSerializer.JsonContentType));
    }

    /// <summary>
    /// One operation queue: its consumer (configured by <paramref name="consumer"/>) and the
    /// error reply that answers requests that fail before or inside it; shared with the
    /// benchmark's echo service.
    /// </summary>
    public static void ConfigureKvEndpoint(
        this IRabbitMqReceiveEndpointConfigurator endpoint, IBusRegistrationContext context, Action<IRabbitMqReceiveEndpointConfigurator> consumer)
    {
        consumer(endpoint);
        // Quorum queues for clusters; their _error queues take the same type (MassTransit copies the arguments).
        if (context.GetRequiredService<IOptions<RabbitMqOptions>>().Value.QueueType == RabbitMqQueueType.Quorum)
            endpoint.SetQuorumQueue();
        var logger = context.GetRequiredService<ILogger<ErrorReplyFilter>>();
        endpoint.ConfigureError(error => error.UseFilter(new ErrorReplyFilter(logger)));
        // Configuring the error pipe replaces MassTransit's defaults: put back the
        // fault reply/publish and the move to the <queue>_error queue.
        endpoint.ConfigureDefaultErrorTransport();
        // A message no consumer takes is answered and moved to <queue>_error like a failed one.
        endpoint.ConfigureDeadLetter(deadLetter => deadLetter.UseFilter(new NotConsumedFilter(logger)));
    }
}
