using System.Diagnostics;
using KvWorker.Client;
using RabbitMQ.Client;

namespace KvWorker.Tests.Client;

/// <summary>The .NET client library against a live worker.</summary>
[Collection(WorkerCollection.Name)]
public sealed class KvClientTests(WorkerFixture worker)
{
    private static string NewNamespace() => "client-" + Guid.NewGuid().ToString("N");

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    private Task<KvClient> ConnectAsync(KvClientOptions? options = null) => KvClient.ConnectAsync(worker.AmqpUri, options);

    [Fact]
    public async Task Each_operation_returns_its_typed_result()
    {
        var ns = NewNamespace();
        await using var client = await ConnectAsync();

        var set = await client.SetAsync(new KvSet { Namespace = ns, Key = "plan", Value = Json("""{"step":1}"""), TtlSeconds = 600 });
        var get = await client.GetAsync(new KvGet { Namespace = ns, Key = "plan" });
        var missing = await client.GetAsync(new KvGet { Namespace = ns, Key = "nothing" });
        var counter = await client.IncrementAsync(new KvIncrement { Namespace = ns, Key = "turns", Delta = 5, InitialValue = 10 });
        var usage = await client.UsageAsync(new KvUsage { Namespace = ns });
        var deleted = await client.DeleteAsync(new KvDelete { Namespace = ns, Key = "plan" });
        var purge = await client.PurgeAsync(new PurgeExpiredEntries { Namespace = ns });

        Assert.Equal(600, set.TtlSeconds);
        Assert.True(get.Found);
        Assert.True(JsonElement.DeepEquals(Json("""{"step":1}"""), get.Value!.Value));
        Assert.InRange(get.TtlSeconds!.Value, 590, 600);
        Assert.False(missing.Found);
        Assert.Equal(15, counter.Value.GetInt64());
        Assert.Equal(2, usage.Entries);
        Assert.Equal(10 + 2, usage.UsedBytes); // {"step":1} and 15
        Assert.True(deleted.Deleted);
        Assert.Equal(ns, purge.Namespace);
    }

    [Fact]
    public async Task The_clients_persona_goes_with_every_request_that_names_none()
    {
        var ns = NewNamespace();
        await using var client = await ConnectAsync(new KvClientOptions { Persona = "somebody-else" });

        var denied = await Assert.ThrowsAsync<AccessDeniedException>(() => client.IncrementAsync(new KvIncrement { Namespace = ns, Key = "c" }));
        var allowed = await client.IncrementAsync(new KvIncrement { Namespace = ns, Key = "c", Persona = WorkerFixture.TestPersona });

        Assert.Contains("somebody-else", denied.Message);
        Assert.Equal(1, allowed.Value.GetInt64());
    }

    [Fact]
    public async Task The_json_call_returns_the_reply_as_the_worker_sent_it()
    {
        var ns = NewNamespace();
        await using var client = await ConnectAsync();
        await client.SetAsync(new KvSet { Namespace = ns, Key = "k", Value = Json("[1,2]") });

        var reply = await client.CallJsonAsync(KvOperations.Get, new KvGet { Namespace = ns, Key = "k" });

        Assert.True(JsonElement.DeepEquals(Json($$"""{"namespace":"{{ns}}","key":"k","found":true,"value":[1,2],"version":1}"""), reply), reply.GetRawText());
    }

    [Fact]
    public async Task Error_replies_of_the_worker_are_raised_as_typed_exceptions()
    {
        var ns = NewNamespace();
        await using var client = await ConnectAsync();
        await client.SetAsync(new KvSet { Namespace = ns, Key = "text", Value = Json("\"not a number\"") });

        var invalid = await Assert.ThrowsAsync<KeyValueStoreException>(() => client.GetAsync(new KvGet { Namespace = ns, Key = "" }));
        var notInteger = await Assert.ThrowsAsync<InvalidValueTypeException>(() => client.IncrementAsync(new KvIncrement { Namespace = ns, Key = "text" }));
        var tooBig = await Assert.ThrowsAsync<NamespaceQuotaExceededException>(() =>
            client.SetAsync(new KvSet { Namespace = ns, Key = "big", Value = JsonSerializer.SerializeToElement(new string('x', 1024 * 1024)) }));
        var tooDeep = await Assert.ThrowsAsync<ValueSerializationException>(() =>
            client.SetAsync(new KvSet { Namespace = ns, Key = "deep", Value = Json(NestedJson.Arrays(40)) }));
        var denied = await Assert.ThrowsAsync<AccessDeniedException>(() =>
            client.GetAsync(new KvGet { Namespace = ns, Key = "text", Persona = "somebody-else" }));

        Assert.Equal(KvErrorCodes.KeyValueStoreError, invalid.Code);
        Assert.Equal(KvErrorCodes.InvalidValueTypeError, notInteger.Code);
        Assert.Contains("'text'", notInteger.Message);
        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, tooBig.Code);
        Assert.Equal(KvErrorCodes.ValueSerializationError, tooDeep.Code);
        Assert.Equal(KvErrorCodes.AccessDeniedError, denied.Code);
    }

    [Fact]
    public async Task A_call_repeated_with_its_message_id_gets_the_first_answer_and_applies_once()
    {
        var ns = NewNamespace();
        await using var client = await ConnectAsync();
        var increment = new KvIncrement { Namespace = ns, Key = "c" };
        var once = new KvCallOptions { MessageId = Guid.NewGuid().ToString() };

        var first = await client.IncrementAsync(increment, once);
        var retry = await client.IncrementAsync(increment, once);
        var fresh = await client.IncrementAsync(increment);

        Assert.Equal(1, first.Value.GetInt64());
        Assert.Equal(1, retry.Value.GetInt64());
        Assert.Equal(2, fresh.Value.GetInt64());
    }

    [Fact]
    public async Task Many_tasks_share_one_client_and_each_gets_its_own_reply()
    {
        var ns = NewNamespace();
        await using var client = await ConnectAsync();

        var values = await Task.WhenAll(Enumerable.Range(0, 300).Select(i => Task.Run(async () =>
            (await client.IncrementAsync(new KvIncrement { Namespace = ns, Key = "c" })).Value.GetInt64())));
        var keys = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
            (await client.SetAsync(new KvSet { Namespace = ns, Key = $"k{i}", Value = JsonSerializer.SerializeToElement(new string('v', i * 100)) })).Key)));

        Assert.Equal(Enumerable.Range(1, 300).Select(i => (long)i), values.Order());
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"k{i}").Order(), keys.Order());
    }

    [Fact]
    public async Task A_request_to_a_queue_nobody_declared_fails_at_once()
    {
        await using var client = await ConnectAsync();
        var clock = Stopwatch.StartNew();

        var missing = await Assert.ThrowsAsync<KvQueueNotFoundException>(() => client.CallRawAsync("kvtest-nobody-" + Guid.NewGuid().ToString("N"), "{}"u8.ToArray()));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.StartsWith("kvtest-nobody-", missing.Queue);
        Assert.Contains("there is no queue kvtest-nobody-", missing.Message);
    }

    [Fact]
    public async Task A_request_carries_its_time_out_as_expiration_and_the_connections_user_as_user_id()
    {
        var queue = "kvtest-idle-" + Guid.NewGuid().ToString("N");
        await using var client = await ConnectAsync();
        await using var channel = await client.Connection.CreateChannelAsync();
        await channel.QueueDeclareAsync(queue, durable: false, exclusive: true, autoDelete: false);
        using var stop = new CancellationTokenSource();

        var call = client.CallRawAsync(queue, "{}"u8.ToArray(), new KvRawCallOptions { Timeout = TimeSpan.FromSeconds(12.5), MessageId = "m-1" }, stop.Token);
        var request = await QueueReader.NextAsync(channel, queue, TimeSpan.FromSeconds(10));
        await stop.CancelAsync();

        Assert.NotNull(request);
        Assert.Equal("12500", request.BasicProperties.Expiration);
        Assert.Equal("m-1", request.BasicProperties.MessageId);
        Assert.Equal(client.UserName, request.BasicProperties.UserId);
        Assert.Equal("application/json", request.BasicProperties.ContentType);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public async Task A_refused_login_and_an_unreachable_broker_are_told_apart()
    {
        var refused = await Assert.ThrowsAsync<KvLoginRefusedException>(() =>
            KvClient.ConnectAsync(new UriBuilder(worker.AmqpUri) { UserName = "kvtest-nobody", Password = "s3cret" }.Uri));
        var unreachable = await Assert.ThrowsAsync<KvBrokerUnreachableException>(() =>
            KvClient.ConnectAsync(new Uri("amqp://guest:guest@127.0.0.1:1/")));

        Assert.Equal("kvtest-nobody", refused.UserName);
        Assert.Contains("refused the login of user 'kvtest-nobody'", refused.Message);
        Assert.DoesNotContain("s3cret", refused.Message);
        Assert.Contains("cannot reach RabbitMQ at amqp://127.0.0.1:1/", unreachable.Message);
    }

    [Fact]
    public async Task Connecting_to_a_server_that_never_answers_the_handshake_fails_at_the_connect_time_out_rather_than_hanging()
    {
        // Takes the connection and says nothing, as a hung broker or another service on its port may.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var url = new Uri($"amqp://guest:guest@127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}/");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var unreachable = await Assert.ThrowsAsync<KvBrokerUnreachableException>(() =>
            KvClient.ConnectAsync(url, new KvClientOptions { ConnectTimeout = TimeSpan.FromSeconds(1) }).WaitAsync(TimeSpan.FromSeconds(60)));
        var took = clock.Elapsed;

        Assert.Contains($"cannot reach RabbitMQ at {new UriBuilder(url) { UserName = "", Password = "" }.Uri}", unreachable.Message);
        Assert.Contains("within 1 s", unreachable.Message);
        // At the time-out, not once RabbitMQ's client has given up the open it was cancelled in, 5 to 25 s later.
        Assert.True(took < TimeSpan.FromSeconds(4), $"took {took}");
    }
}
