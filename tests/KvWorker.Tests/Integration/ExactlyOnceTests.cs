using MassTransit;

namespace KvWorker.Tests.Integration;

/// <summary>Duplicate deliveries through RabbitMQ: one effect, identical replies.</summary>
[Collection(WorkerCollection.Name)]
public sealed class ExactlyOnceTests(WorkerFixture worker)
{
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");
    private static byte[] Body(object request) => JsonSerializer.SerializeToUtf8Bytes(request);

    [Fact]
    public async Task The_same_increment_delivered_twice_applies_once_and_gets_two_identical_replies()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();
        var messageId = Guid.NewGuid().ToString();
        var request = Body(new { @namespace = ns, key = "c", delta = 7, ttl_seconds = 600 });

        var first = await client.CallWithPropertiesAsync(KvOperations.Increment.Queue, request, messageId);
        var second = await client.CallWithPropertiesAsync(KvOperations.Increment.Queue, request, messageId);

        Assert.Equal(first.Body, second.Body);
        Assert.Equal(7, JsonDocument.Parse(first.Body).RootElement.GetProperty("value").GetInt64());
        var stored = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "c" });
        Assert.Equal(7, stored.GetProperty("value").GetInt64());
    }

    [Fact]
    public async Task A_message_id_reused_for_a_set_of_another_key_is_refused_naming_it_and_writes_nothing()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();
        var messageId = Guid.NewGuid().ToString();
        await client.CallWithPropertiesAsync(KvOperations.Set.Queue, Body(new { @namespace = ns, key = "a", value = 1 }), messageId);

        var reused = await client.CallRawAsync(KvOperations.Set.Queue, Body(new { @namespace = ns, key = "b", value = 2 }), messageId);

        Assert.Equal(KvErrorCodes.KeyValueStoreError, reused.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains(messageId, reused.GetProperty("error").GetProperty("message").GetString());
        Assert.False((await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "b" })).GetProperty("found").GetBoolean());
    }

    [Fact]
    public async Task A_message_id_holding_a_nul_is_refused_as_invalid_and_counts_nothing()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();

        // An AMQP message_id may hold any bytes; the store cannot hold a NUL (PostgreSQL's text refuses it).
        var refused = await client.CallRawAsync(KvOperations.Increment.Queue, Body(new { @namespace = ns, key = "c" }), "retry\0me");

        var error = refused.GetProperty("error");
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error.GetProperty("code").GetString());
        Assert.StartsWith("message_id ", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.False((await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "c" })).GetProperty("found").GetBoolean());
    }

    [Fact]
    public async Task A_message_id_of_a_delete_reused_for_an_increment_is_refused_and_counts_nothing()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();
        var messageId = Guid.NewGuid().ToString();
        await client.CallWithPropertiesAsync(KvOperations.Delete.Queue, Body(new { @namespace = ns, key = "c" }), messageId);

        var reused = await client.CallRawAsync(KvOperations.Increment.Queue, Body(new { @namespace = ns, key = "c" }), messageId);

        Assert.Equal(KvErrorCodes.KeyValueStoreError, reused.GetProperty("error").GetProperty("code").GetString());
        Assert.False((await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "c" })).GetProperty("found").GetBoolean());
    }

    [Fact]
    public async Task A_retried_delete_answers_as_the_first_time_even_after_the_key_came_back()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "k", value = 1 });
        var messageId = Guid.NewGuid().ToString();
        var delete = Body(new { @namespace = ns, key = "k" });

        var first = await client.CallWithPropertiesAsync(KvOperations.Delete.Queue, delete, messageId);
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "k", value = 2 });
        var retry = await client.CallWithPropertiesAsync(KvOperations.Delete.Queue, delete, messageId);

        Assert.Equal(first.Body, retry.Body);
        Assert.True(JsonDocument.Parse(retry.Body).RootElement.GetProperty("deleted").GetBoolean());
        var stored = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "k" });
        Assert.Equal(2, stored.GetProperty("value").GetInt64()); // the retry deleted nothing
    }

    [Fact]
    public async Task A_set_redelivered_after_a_later_write_does_not_overwrite_it()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();
        var messageId = Guid.NewGuid().ToString();
        var set = Body(new { @namespace = ns, key = "k", value = "old" });

        var first = await client.CallWithPropertiesAsync(KvOperations.Set.Queue, set, messageId);
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "k", value = "new" });
        var redelivered = await client.CallWithPropertiesAsync(KvOperations.Set.Queue, set, messageId);

        Assert.Equal(first.Body, redelivered.Body);
        var stored = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "k" });
        Assert.Equal("new", stored.GetProperty("value").GetString());
    }

    [Fact]
    public async Task A_masstransit_client_resending_with_the_same_message_id_increments_once()
    {
        var ns = NewNamespace();
        var messageId = NewId.NextGuid();
        var client = worker.Client<KvIncrement>(KvOperations.Increment.Queue);
        var request = new KvIncrement { Namespace = ns, Key = "c", Delta = 3 };

        var first = await client.GetResponse<KvIncrementResult, KvError>(request, x => x.UseExecute(c => c.MessageId = messageId));
        var second = await client.GetResponse<KvIncrementResult, KvError>(request, x => x.UseExecute(c => c.MessageId = messageId));

        Assert.True(first.Is(out Response<KvIncrementResult>? a));
        Assert.True(second.Is(out Response<KvIncrementResult>? b));
        Assert.Equal(3, a!.Message.Value.GetInt64());
        Assert.Equal(3, b!.Message.Value.GetInt64());
    }

    [Fact]
    public async Task A_quota_rejection_retried_after_space_is_freed_is_applied()
    {
        var ns = NewNamespace();
        await using var client = await worker.RawClientAsync();
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "filler", value = new string('x', 1024 * 1024 - 100) });
        var messageId = Guid.NewGuid().ToString();
        var set = Body(new { @namespace = ns, key = "k", value = new string('y', 200) });

        var rejected = JsonDocument.Parse((await client.CallWithPropertiesAsync(KvOperations.Set.Queue, set, messageId)).Body).RootElement;
        Assert.Equal("NamespaceQuotaExceededError", rejected.GetProperty("error").GetProperty("code").GetString());
        await client.CallAsync(KvOperations.Delete.Queue, new { @namespace = ns, key = "filler" });
        var retried = JsonDocument.Parse((await client.CallWithPropertiesAsync(KvOperations.Set.Queue, set, messageId)).Body).RootElement;

        Assert.Equal(200, retried.GetProperty("value").GetString()!.Length);
    }

    [Fact]
    public async Task A_masstransit_subscriber_receives_quota_events_as_contract_records()
    {
        var ns = NewNamespace();
        var client = worker.Client<KvSet>(KvOperations.Set.Queue);
        var tooBig = JsonDocument.Parse($"\"{new string('z', 1024 * 1024)}\"").RootElement.Clone();

        var response = await client.GetResponse<KvSetResult, KvError>(new KvSet { Namespace = ns, Key = "k", Value = tooBig });

        Assert.True(response.Is(out Response<KvError>? _));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!worker.QuotaEvents.Any(e => e.Namespace == ns) && DateTime.UtcNow < deadline) await Task.Delay(100);
        var received = Assert.Single(worker.QuotaEvents, e => e.Namespace == ns);
        Assert.Equal("k", received.Key);
        Assert.Equal(BrokerFixture.TestPersona, received.Persona); // the identity's default persona
        Assert.Equal(1024 * 1024 + 2, received.AttemptedBytes);
        Assert.Equal(1024 * 1024, received.QuotaBytes);
    }
}
