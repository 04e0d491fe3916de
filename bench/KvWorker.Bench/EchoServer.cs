using System.Text.Json;
using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Messaging;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace KvWorker.Bench;

/// <summary>
/// Baseline (a): the worker's MassTransit set-up (same transport settings, deserializer,
/// prefetch, endpoint configuration and reply path to plain AMQP clients) with consumers
/// that answer each operation with a result of the same shape without touching a database.
/// Runs as its own process (<c>KvWorker.Bench echo-server</c>), configured like the worker
/// through the <c>RabbitMq</c> section.
/// </summary>
public static class EchoServer
{
    public const string Argument = "echo-server";

    public static async Task RunAsync(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddOptions<RabbitMqOptions>().BindConfiguration(RabbitMqOptions.Section);
        builder.Services.AddMassTransit(bus =>
        {
            bus.AddConsumer<EchoGetConsumer>();
            bus.AddConsumer<EchoSetConsumer>();
            bus.AddConsumer<EchoDeleteConsumer>();
            bus.AddConsumer<EchoIncrementConsumer>();
            bus.UsingRabbitMq((context, rabbit) =>
            {
                rabbit.ConfigureKvTransport(context);
                rabbit.ReceiveEndpoint(KvQueues.Get, endpoint => endpoint.ConfigureKvEndpoint<EchoGetConsumer>(context));
                rabbit.ReceiveEndpoint(KvQueues.Set, endpoint => endpoint.ConfigureKvEndpoint<EchoSetConsumer>(context));
                rabbit.ReceiveEndpoint(KvQueues.Delete, endpoint => endpoint.ConfigureKvEndpoint<EchoDeleteConsumer>(context));
                rabbit.ReceiveEndpoint(KvQueues.Increment, endpoint => endpoint.ConfigureKvEndpoint<EchoIncrementConsumer>(context));
            });
        });
        await builder.Build().RunAsync();
    }
}

public sealed class EchoGetConsumer : IConsumer<KvGet>
{
    private static readonly JsonElement Value = JsonDocument.Parse(Workload.SetValue).RootElement.Clone();

    public Task Consume(ConsumeContext<KvGet> context) => KvRequestHandler.ReplyAsync(context,
        new KvGetResult { Namespace = context.Message.Namespace, Key = context.Message.Key, Found = true, Value = Value });
}

public sealed class EchoSetConsumer : IConsumer<KvSet>
{
    public Task Consume(ConsumeContext<KvSet> context) => KvRequestHandler.ReplyAsync(context,
        new KvSetResult { Namespace = context.Message.Namespace, Key = context.Message.Key, Value = context.Message.Value, TtlSeconds = context.Message.TtlSeconds });
}

public sealed class EchoDeleteConsumer : IConsumer<KvDelete>
{
    public Task Consume(ConsumeContext<KvDelete> context) => KvRequestHandler.ReplyAsync(context,
        new KvDeleteResult { Namespace = context.Message.Namespace, Key = context.Message.Key, Deleted = true });
}

public sealed class EchoIncrementConsumer : IConsumer<KvIncrement>
{
    public Task Consume(ConsumeContext<KvIncrement> context)
    {
        var request = context.Message;
        var value = JsonSerializer.SerializeToElement(request.InitialValue + request.Delta);
        return KvRequestHandler.ReplyAsync(context,
            new KvIncrementResult { Namespace = request.Namespace, Key = request.Key, Value = value, TtlSeconds = request.TtlSeconds });
    }
}
