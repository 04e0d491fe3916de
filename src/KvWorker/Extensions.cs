using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Health;
using KvWorker.Messaging;
using KvWorker.Redis;
using KvWorker.Storage;
using KvWorker.Storage.Postgres;
using KvWorker.Telemetry;
using MassTransit;
using MassTransit.Configuration;
using MassTransit.Serialization;
using Microsoft.Extensions.Options;
using Npgsql;
using Serilog;

namespace KvWorker;

public static class Extensions
{
    /// <summary>Everything the worker needs: configuration, logging, storage and the RabbitMQ endpoints.</summary>
    public static void AddKvWorker(this IHostApplicationBuilder builder)
    {
        builder.Configuration.AddKvStoreConfiguration(Directory.GetCurrentDirectory());
        var services = builder.Services;

        services.AddSerilog((_, logger) => logger
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            .Filter.ByExcluding(ErrorReplyFilter.IsMalformedRequestFault)
            .WriteTo.Console(formatProvider: System.Globalization.CultureInfo.InvariantCulture));

        services.AddKvStoreOptions();
        services.AddKvStoreAdapters(builder.Configuration);
        services.AddSingleton<PersonaPolicy>();
        services.AddSingleton<KvRequestHandler>();

        // Registered before MassTransit so the schema exists before the first message.
        services.AddHostedService<PostgresSchemaStartup>();

        services.AddMassTransit(bus =>
        {
            bus.AddConsumer<KvGetConsumer>();
            bus.AddConsumer<KvSetConsumer>();
            bus.AddConsumer<KvDeleteConsumer>();
            bus.AddConsumer<KvIncrementConsumer>();
            bus.AddConsumer<KvUsageConsumer>();
            bus.UsingRabbitMq((context, rabbit) => rabbit.ConfigureKvEndpoints(context));
        });
        services.AddHostedService<OutboxPublisher>();
        services.AddHostedService<ExpiryPurgeService>();

        services.AddKvHealth();
        builder.AddKvTelemetry();
    }

    /// <summary>
    /// The providers requests and personas can name: <c>postgres</c> (built in,
    /// the default) and <c>redis</c> when <c>tools:kv_store:adapters:redis:url</c>
    /// is configured; and the registry that picks one per request.
    /// </summary>
    public static IServiceCollection AddKvStoreAdapters(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(provider =>
        {
            var postgres = provider.GetRequiredService<IOptions<KvStoreOptions>>().Value.Adapters.Postgres;
            return NpgsqlDataSource.Create(PostgresConnection.Resolve(postgres, provider.GetRequiredService<IConfiguration>()));
        });
        services.AddKvStoreAdapter("postgres", provider =>
        {
            var options = provider.GetRequiredService<IOptions<KvStoreOptions>>().Value;
            return new PostgresKvStoreAdapter(provider.GetRequiredService<NpgsqlDataSource>(), options.Adapters.Postgres, options.Limits);
        });

        if (RedisAdapterOptions.IsConfigured(configuration))
        {
            services.AddOptions<RedisAdapterOptions>().BindConfiguration(RedisAdapterOptions.Section).ValidateOnStart();
            services.AddSingleton<IValidateOptions<RedisAdapterOptions>, RedisAdapterOptionsValidator>();
            services.AddKvStoreAdapter("redis", provider => RedisKvStoreAdapter.Connect(
                provider.GetRequiredService<IOptions<RedisAdapterOptions>>().Value,
                provider.GetRequiredService<IOptions<KvStoreOptions>>().Value.Limits.MaxIntegerDigits));
        }

        services.AddSingleton<KvStoreAdapterRegistry>();
        return services;
    }

    /// <summary>The tools:kv_store and RabbitMq sections, validated when the host starts.</summary>
    public static IServiceCollection AddKvStoreOptions(this IServiceCollection services)
    {
        services.AddOptions<KvStoreOptions>().BindConfiguration(KvStoreOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<KvStoreOptions>, KvStoreOptionsValidator>();
        services.AddOptions<RabbitMqOptions>().BindConfiguration(RabbitMqOptions.Section).ValidateOnStart();
        services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section)
            .Validate(o => o.ShutdownTimeoutSeconds > 0 && double.IsFinite(o.ShutdownTimeoutSeconds),
                $"{WorkerOptions.Section}:ShutdownTimeoutSeconds must be a positive number of seconds")
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

    /// <summary>The RabbitMQ host and the four operation queues, each with its consumer and error reply.</summary>
    public static void ConfigureKvEndpoints(this IRabbitMqBusFactoryConfigurator rabbit, IBusRegistrationContext context)
    {
        rabbit.ConfigureKvTransport(context);
        rabbit.ConfigureKvEvents();

        rabbit.ReceiveEndpoint(KvQueues.Get, endpoint => endpoint.ConfigureKvEndpoint<KvGetConsumer>(context));
        rabbit.ReceiveEndpoint(KvQueues.Set, endpoint => endpoint.ConfigureKvEndpoint<KvSetConsumer>(context));
        rabbit.ReceiveEndpoint(KvQueues.Delete, endpoint => endpoint.ConfigureKvEndpoint<KvDeleteConsumer>(context));
        rabbit.ReceiveEndpoint(KvQueues.Increment, endpoint => endpoint.ConfigureKvEndpoint<KvIncrementConsumer>(context));
        rabbit.ReceiveEndpoint(KvQueues.Usage, endpoint => endpoint.ConfigureKvEndpoint<KvUsageConsumer>(context));
    }

    /// <summary>The RabbitMQ host, the plain JSON deserializer and the prefetch; shared with the benchmark's echo service.</summary>
    public static void ConfigureKvTransport(this IRabbitMqBusFactoryConfigurator rabbit, IBusRegistrationContext context)
    {
        var options = context.GetRequiredService<IOptions<RabbitMqOptions>>().Value;
        rabbit.Host(options.Host, options.Port, options.VirtualHost, host =>
        {
            host.Username(options.Username);
            host.Password(options.Password);
        });
        // Plain JSON from any AMQP client (also when it sets no content type);
        // MassTransit clients' envelopes are still recognised by their content type.
        rabbit.UseRawJsonDeserializer(RawSerializerOptions.AnyMessageType, isDefault: true);
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
        rabbit.ConfigureKvEvent<NamespaceQuotaExceeded>();
        rabbit.ConfigureKvEvent<GlobalQuotaExceeded>();
        rabbit.ConfigureKvEvent<NamespaceQuotaThresholdReached>();
        rabbit.ConfigureKvEvent<KvEntriesExpired>();
    }

    private static void ConfigureKvEvent<TEvent>(this IRabbitMqBusFactoryConfigurator rabbit) where TEvent : class
    {
        rabbit.Message<TEvent>(message => message.SetEntityName(typeof(TEvent).Name));
        rabbit.Send<TEvent>(send => send.UseSerializer(SystemTextJsonRawMessageSerializer.JsonContentType));
    }

    /// <summary>One operation queue: its consumer and the error reply; shared with the benchmark's echo service.</summary>
    public static void ConfigureKvEndpoint<TConsumer>(this IRabbitMqReceiveEndpointConfigurator endpoint, IBusRegistrationContext context)
        where TConsumer : class, IConsumer
    {
        endpoint.ConfigureConsumer<TConsumer>(context);
        var logger = context.GetRequiredService<ILogger<ErrorReplyFilter>>();
        endpoint.ConfigureError(error => error.UseFilter(new ErrorReplyFilter(logger)));
        // Configuring the error pipe replaces MassTransit's defaults: put back the
        // fault reply/publish and the move to the <queue>_error queue.
        endpoint.ConfigureDefaultErrorTransport();
        // A message no consumer takes is answered and moved to <queue>_error like a failed one.
        endpoint.ConfigureDeadLetter(deadLetter => deadLetter.UseFilter(new NotConsumedFilter(logger)));
    }
}
