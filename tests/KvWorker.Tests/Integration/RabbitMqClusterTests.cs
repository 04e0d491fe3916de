using MassTransit;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Tests.Integration;

/// <summary>Several broker nodes, against a virtual host of their own.</summary>
public sealed class RabbitMqClusterTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task A_worker_given_several_nodes_moves_to_another_when_its_node_goes_away()
    {
        // Two "nodes": ports that forward to the one test broker; closing one cuts its connections.
        var nodes = new List<TcpForwarder> { new(broker.Broker.Host, broker.Broker.Port), new(broker.Broker.Host, broker.Broker.Port) };
        try
        {
            var worker = broker.StartWorkerProcess(new Dictionary<string, string?>
            {
                ["RabbitMq:Hosts"] = string.Join(',', nodes.Select(node => $"127.0.0.1:{node.Port}")),
            });
            try
            {
                await broker.WaitForConsumersAsync(KvOperations.Increment.Queue, 1, TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException ex)
            {
                throw new TimeoutException(ex.Message + "\n" + worker.Output, ex);
            }
            await using var client = await broker.RawClientAsync();
            var ns = "ns-" + Guid.NewGuid().ToString("N");
            await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "c" });

            var connected = Assert.Single(nodes, node => node.Connections > 0);
            connected.Dispose();
            nodes.Remove(connected);

            var reply = await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "c" }, timeout: TimeSpan.FromSeconds(60));
            Assert.True(reply.TryGetProperty("value", out var value), reply.GetRawText() + "\n" + worker.Output);
            Assert.Equal(2, value.GetInt64());
            Assert.True(nodes[0].Connections > 0, worker.Output);
        }
        finally
        {
            foreach (var node in nodes) node.Dispose();
        }
    }
}

/// <summary>The start-up line of a worker given several nodes, against a virtual host of its own.</summary>
public sealed class RabbitMqClusterLogTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task A_worker_given_several_nodes_logs_the_one_it_connected_to()
    {
        // Two "nodes": ports that forward to the one test broker.
        using var first = new TcpForwarder(broker.Broker.Host, broker.Broker.Port);
        using var second = new TcpForwarder(broker.Broker.Host, broker.Broker.Port);
        TcpForwarder[] nodes = [first, second];
        var worker = broker.StartWorkerProcess(new Dictionary<string, string?>
        {
            ["RabbitMq:Hosts"] = string.Join(',', nodes.Select(node => $"127.0.0.1:{node.Port}")),
            ["Serilog:MinimumLevel:Override:KvWorker.Amqp.ConsumingLog"] = "Information",
        });
        for (var waited = 0; waited < 600 && !worker.Output.Contains("Connected to RabbitMQ", StringComparison.Ordinal); waited++)
            await Task.Delay(100);

        var line = Assert.Single(worker.Output.Split('\n'), line => line.Contains("Connected to RabbitMQ", StringComparison.Ordinal));
        var connected = Assert.Single(nodes, node => node.Connections > 0);
        Assert.Contains($"Connected to RabbitMQ (127.0.0.1:{connected.Port}), virtual host ", line, StringComparison.Ordinal);
    }
}

/// <summary>A queue type that RabbitMQ refuses, on a virtual host of its own (the refused worker leaves queues of the other type behind).</summary>
public sealed class QueueTypeMismatchTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task A_queue_type_other_than_the_existing_queues_ends_start_up_with_exit_2_naming_the_setting()
    {
        await using (var client = await broker.RawClientAsync())
        await using (var channel = await client.Connection.CreateChannelAsync())
            await channel.QueueDeclareAsync(KvOperations.Get.Queue, durable: true, exclusive: false, autoDelete: false); // classic

        var worker = broker.StartWorkerProcess(new Dictionary<string, string?> { ["RabbitMq:QueueType"] = "quorum" });
        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, worker.ExitCode);
        Assert.Contains("environment variable RabbitMq__QueueType is quorum, but queue kv_get exists with another type", worker.Output);
    }
}

/// <summary>Quorum operation queues on a virtual host of their own (quorum queues work on a single node too).</summary>
public sealed class QuorumQueueTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    [Fact]
    public async Task With_queue_type_quorum_the_operation_queues_and_their_error_queues_are_quorum_queues_and_requests_are_answered()
    {
        broker.StartWorkerProcess(new Dictionary<string, string?> { ["RabbitMq:QueueType"] = "quorum" });
        await broker.WaitForConsumersAsync(KvOperations.Set.Queue, 1, TimeSpan.FromSeconds(60));
        await using var client = await broker.RawClientAsync();
        var ns = "ns-" + Guid.NewGuid().ToString("N");

        var set = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "k", value = 1 });
        var garbage = await client.CallRawAsync(KvOperations.Set.Queue, "not json"u8.ToArray()); // moved to kv_set_error

        Assert.True(set.TryGetProperty("version", out _), set.GetRawText());
        Assert.Equal(KvErrorCodes.KeyValueStoreError, garbage.GetProperty("error").GetProperty("code").GetString());
        // The error queue is declared when the first message moves there, just after the reply.
        await WaitForQueueAsync(client, KvOperations.Set.Queue + "_error");
        foreach (var queue in KvOperations.All.Select(operation => operation.Queue).Append(KvOperations.Set.Queue + "_error"))
            Assert.True(await IsQuorumQueueAsync(client, queue), $"{queue} is not a quorum queue");
    }

    [Fact]
    public async Task A_masstransit_client_reaches_quorum_queues_through_their_exchange()
    {
        broker.StartWorkerProcess(new Dictionary<string, string?> { ["RabbitMq:QueueType"] = "quorum" });
        await broker.WaitForConsumersAsync(KvOperations.Increment.Queue, 1, TimeSpan.FromSeconds(60));
        var bus = await broker.StartClientBusAsync();
        try
        {
            // A queue: address would declare kv_increment as a classic queue, which RabbitMQ refuses.
            var response = await bus.CreateRequestClient<KvIncrement>(new Uri($"exchange:{KvOperations.Increment.Queue}"))
                .GetResponse<KvIncrementResult, KvError>(new KvIncrement { Namespace = "ns-" + Guid.NewGuid().ToString("N"), Key = "c" });

            Assert.True(response.Is(out Response<KvIncrementResult>? result), response.Message.ToString());
            Assert.Equal(1, result!.Message.Value.GetInt64());
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    private static async Task WaitForQueueAsync(RawRpcClient client, string queue)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(10); ; await Task.Delay(100))
        {
            await using var channel = await client.Connection.CreateChannelAsync();
            try
            {
                await channel.QueueDeclarePassiveAsync(queue);
                return;
            }
            catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404 && DateTime.UtcNow < deadline)
            {
                // Not declared yet.
            }
        }
    }

    /// <summary>RabbitMQ refuses to declare a quorum queue again as a classic one: that refusal tells the type.</summary>
    private static async Task<bool> IsQuorumQueueAsync(RawRpcClient client, string queue)
    {
        await using var channel = await client.Connection.CreateChannelAsync();
        try
        {
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false);
            return false;
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyText.Contains("x-queue-type", StringComparison.Ordinal) == true)
        {
            return true;
        }
    }
}
