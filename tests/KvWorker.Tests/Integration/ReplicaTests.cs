
namespace KvWorker.Tests.Integration;

/// <summary>Two worker processes competing for the same queues, with a small namespace quota.</summary>
public sealed class TwoReplicasFixture : BrokerFixture
{
    public const long NamespaceQuotaBytes = 1000;

    /// <summary>Subscribed before the replicas start, so it sees every event they publish.</summary>
    public EventSubscriber Events { get; private set; } = null!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Events = await EventSubscriber.ConnectAsync(AmqpUri);
        var settings = new Dictionary<string, string?>
        {
            ["tools:kv_store:adapters:postgres:namespace_quota_bytes"] = NamespaceQuotaBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["tools:kv_store:adapters:postgres:purge_interval_seconds"] = "0.5",
            ["tools:kv_store:adapters:postgres:outbox_poll_interval_ms"] = "100",
            // A small prefetch makes RabbitMQ spread each burst over both replicas.
            ["RabbitMq:PrefetchCount"] = "4",
        };
        var replicas = new[] { StartWorkerProcess(settings), StartWorkerProcess(settings) };
        try
        {
            foreach (var queue in KvOperations.All.Select(operation => operation.Queue))
                await WaitForConsumersAsync(queue, 2, TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}\nreplica 1:\n{replicas[0].Output}\nreplica 2:\n{replicas[1].Output}", ex);
        }
    }

    public override async Task DisposeAsync()
    {
        await Events.DisposeAsync();
        await base.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class TwoReplicasCollection : ICollectionFixture<TwoReplicasFixture>
{
    public const string Name = "two replicas";
}

[Collection(TwoReplicasCollection.Name)]
public sealed class ReplicaTests(TwoReplicasFixture replicas)
{
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Eight_clients_making_fifty_increments_each_across_two_replicas_end_at_exactly_400()
    {
        var ns = NewNamespace();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            await using var client = await replicas.RawClientAsync();
            for (var i = 0; i < 50; i++)
            {
                var reply = await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "counter" });
                Assert.True(reply.TryGetProperty("value", out System.Text.Json.JsonElement _), reply.GetRawText());
            }
        })));

        await using var reader = await replicas.RawClientAsync();
        var final = await reader.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "counter" });
        Assert.Equal(400, final.GetProperty("value").GetInt64());
    }

    [Fact]
    public async Task Concurrent_writers_on_two_replicas_cannot_push_a_namespace_past_its_quota()
    {
        var ns = NewNamespace();
        var value = new string('v', 96); // 98 bytes as JSON: ten fit in 1000
        var accepted = 0;
        var rejected = 0;

        await Task.WhenAll(Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
        {
            await using var client = await replicas.RawClientAsync();
            for (var i = 0; i < 5; i++)
            {
                var reply = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = $"w{writer}-{i}", value });
                if (reply.TryGetProperty("error", out var error))
                {
                    Assert.Equal("NamespaceQuotaExceededError", error.GetProperty("code").GetString());
                    Interlocked.Increment(ref rejected);
                }
                else
                {
                    Interlocked.Increment(ref accepted);
                }
            }
        })));

        var (counted, live, entries) = await replicas.Database.UsageAsync(ns);
        Assert.Equal((10, 30), (accepted, rejected));
        Assert.Equal(980, live);
        Assert.Equal(live, counted);
        Assert.Equal(10, entries);
        Assert.True(live <= TwoReplicasFixture.NamespaceQuotaBytes);
    }
}
