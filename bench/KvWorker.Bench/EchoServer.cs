using System.Text.Json;
using KvWorker.Amqp;
using KvWorker.Configuration;
using KvWorker.Contracts;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KvWorker.Bench;

/// <summary>
/// Baseline (a): the worker's MassTransit set-up (same transport settings, deserializer,
/// prefetch, endpoint configuration and reply path to plain AMQP clients) with a consumer
/// per operation that answers with a result of the same shape without touching a database.
/// Runs as its own process (<c>KvWorker.Bench echo-server</c>), configured like the worker
/// through the <c>RabbitMq</c> section.
/// </summary>
public static class EchoServer
{
    public const string Argument = "echo-server";

    private static readonly JsonElement StoredValue = JsonDocument.Parse(Workload.SetValue).RootElement.Clone();

    public static async Task RunAsync(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddOptions<RabbitMqOptions>().BindConfiguration(RabbitMqOptions.Section);
        builder.Services.AddMassTransit(bus =>
        {
            bus.DisableUsageTelemetry();
            foreach (var operation in KvOperations.All) bus.AddConsumer(Consumer(operation));
            bus.UsingRabbitMq((context, rabbit) =>
            {
                rabbit.ConfigureKvTransport(context);
                foreach (var operation in KvOperations.All)
                    rabbit.ReceiveEndpoint(operation.Queue, endpoint =>
                        endpoint.ConfigureKvEndpoint(context, e => e.ConfigureConsumer(context, Consumer(operation))));
            });
        });
        await builder.Build().RunAsync();
    }

    private static Type Consumer(KvOperation operation) => typeof(EchoConsumer<>).MakeGenericType(operation.RequestType);

    /// <summary>A reply of the shape the worker would give, made up from the request alone.</summary>
    public static object Answer(IKvRequest request) => request switch
    {
        KvGet get => new KvGetResult { Namespace = get.Namespace, Key = get.Key, Found = true, Value = StoredValue },
        KvSet set => new KvSetResult { Namespace = set.Namespace, Key = set.Key, Value = set.Value, TtlSeconds = set.TtlSeconds },
        KvDelete delete => new KvDeleteResult { Namespace = delete.Namespace, Key = delete.Key, Deleted = true },
        KvIncrement increment => new KvIncrementResult
        {
            Namespace = increment.Namespace, Key = increment.Key,
            Value = JsonSerializer.SerializeToElement(increment.InitialValue + increment.Delta), TtlSeconds = increment.TtlSeconds,
        },
        _ => new { @namespace = request.Namespace },
    };
}

public sealed class EchoConsumer<TRequest> : IConsumer<TRequest> where TRequest : class, IKvRequest
{
    public Task Consume(ConsumeContext<TRequest> context) =>
        AmqpReply.SendAsync(context, AmqpProperties.From(context.ReceiveContext), EchoServer.Answer(context.Message));
}
