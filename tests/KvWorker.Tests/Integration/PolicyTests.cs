using KvWorker.Amqp;
using System.Text;
using MassTransit;
using RabbitMQ.Client;

namespace KvWorker.Tests.Integration;

/// <summary>
/// A worker with three broker users of its own: a reader, a writer that may also act
/// as a persona confined to <c>team-a-*</c> namespaces, and a stranger with no grant.
/// </summary>
public sealed class PolicyFixture : WorkerFixture
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    public const string Password = "policy-test";

    public string Reader => "kvtest_reader_" + _suffix;
    public string Writer => "kvtest_writer_" + _suffix;
    public string Stranger => "kvtest_stranger_" + _suffix;

    protected override async Task<IDictionary<string, string?>?> PrepareWorkerAsync()
    {
        await Task.WhenAll(new[] { Reader, Writer, Stranger }.Select(user => TestServers.CreateUserAsync(user, Password, VirtualHost)));
        const string personas = "tools:kv_store:personas";
        const string identities = "tools:kv_store:identities";
        return new Dictionary<string, string?>
        {
            [$"{personas}:reader:flags:0"] = KvStoreManifest.ReadFlag,
            [$"{personas}:writer:flags:0"] = KvStoreManifest.ReadFlag,
            [$"{personas}:writer:flags:1"] = KvStoreManifest.WriteFlag,
            [$"{personas}:team-a:flags:0"] = KvStoreManifest.ReadFlag,
            [$"{personas}:team-a:flags:1"] = KvStoreManifest.WriteFlag,
            [$"{personas}:team-a:namespaces:0"] = "team-a-*",
            [$"{identities}:{Reader}:personas:0"] = "reader",
            [$"{identities}:{Reader}:default_persona"] = "reader",
            [$"{identities}:{Writer}:personas:0"] = "writer",
            [$"{identities}:{Writer}:personas:1"] = "team-a",
            [$"{identities}:{Writer}:default_persona"] = "writer",
        };
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Task.WhenAll(new[] { Reader, Writer, Stranger }.Select(TestServers.DeleteUserAsync));
    }

    public Task<RawRpcClient> ClientAsync(string user) => RawClientAsync(user, Password);
}

[CollectionDefinition(Name)]
public sealed class PolicyCollection : ICollectionFixture<PolicyFixture>
{
    public const string Name = "policy";
}

[Collection(PolicyCollection.Name)]
public sealed class PolicyTests(PolicyFixture fixture)
{
    private static string NewNamespace(string prefix = "ns-") => prefix + Guid.NewGuid().ToString("N");

    private static void AssertDenied(JsonElement reply, string message)
    {
        Assert.True(reply.TryGetProperty("error", out var error), reply.GetRawText());
        Assert.Equal(KvErrorCodes.AccessDeniedError, error.GetProperty("code").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Listing_and_bulk_reads_need_the_read_flag_and_touch_the_write_flag()
    {
        await using var reader = await fixture.ClientAsync(fixture.Reader);
        await using var stranger = await fixture.ClientAsync(fixture.Stranger);
        var ns = NewNamespace();

        Assert.True((await reader.CallAsync(KvOperations.List.Queue, new { @namespace = ns })).TryGetProperty("keys", out _));
        Assert.True((await reader.CallAsync(KvOperations.GetMany.Queue, new { @namespace = ns, keys = new[] { "a" } })).TryGetProperty("entries", out _));
        AssertDenied(await reader.CallAsync(KvOperations.Touch.Queue, new { @namespace = ns, key = "a", ttl_seconds = 5 }), "lacks type.system.kv_store_write");
        AssertDenied(await stranger.CallAsync(KvOperations.List.Queue, new { @namespace = ns }), "is not granted any persona");
        AssertDenied(await stranger.CallAsync(KvOperations.GetMany.Queue, new { @namespace = ns, keys = new[] { "a" } }), "is not granted any persona");
    }

    [Fact]
    public async Task Purging_needs_the_write_flag_and_a_confined_persona_may_purge_only_its_own_namespaces()
    {
        await using var reader = await fixture.ClientAsync(fixture.Reader);
        await using var writer = await fixture.ClientAsync(fixture.Writer);
        await using var stranger = await fixture.ClientAsync(fixture.Stranger);

        AssertDenied(await reader.CallAsync(KvOperations.Purge.Queue, new { }), "lacks type.system.kv_store_write");
        AssertDenied(await stranger.CallAsync(KvOperations.Purge.Queue, new { }), "is not granted any persona");
        AssertDenied(await writer.CallAsync(KvOperations.Purge.Queue, new { persona = "team-a" }), "may only use the namespaces it is granted");
        AssertDenied(await writer.CallAsync(KvOperations.Purge.Queue, new { @namespace = "team-b-x", persona = "team-a" }), "may not use namespace 'team-b-x'");

        var purged = await writer.CallAsync(KvOperations.Purge.Queue, new { @namespace = NewNamespace("team-a-"), persona = "team-a" });
        Assert.False(purged.TryGetProperty("error", out _), purged.GetRawText());
        Assert.True((await writer.CallAsync(KvOperations.Purge.Queue, new { })).TryGetProperty("ran", out _));
    }

    [Fact]
    public async Task A_reader_persona_can_read_but_not_write()
    {
        await using var writer = await fixture.ClientAsync(fixture.Writer);
        await using var reader = await fixture.ClientAsync(fixture.Reader);
        var ns = NewNamespace();
        await writer.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "plan", value = "v1" });
        var before = await fixture.Database.UsageAsync(ns);

        var read = await reader.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "plan" });
        var set = await reader.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "plan", value = "v2" });
        var increment = await reader.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "counter" });
        var delete = await reader.CallAsync(KvOperations.Delete.Queue, new { @namespace = ns, key = "plan" });

        Assert.Equal("v1", read.GetProperty("value").GetString());
        foreach (var denied in new[] { set, increment, delete })
            AssertDenied(denied, $"persona 'reader' lacks {KvStoreManifest.WriteFlag}");
        Assert.Equal("v1", (await writer.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "plan" })).GetProperty("value").GetString());
        Assert.Equal(before, await fixture.Database.UsageAsync(ns));
    }

    [Fact]
    public async Task An_identity_cannot_borrow_another_identitys_persona()
    {
        await using var reader = await fixture.ClientAsync(fixture.Reader);
        var ns = NewNamespace();

        var reply = await reader.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "k", value = 1, persona = "writer" });

        AssertDenied(reply, $"identity '{fixture.Reader}' may not act as persona 'writer'");
        Assert.Equal((0L, 0L, 0L), await fixture.Database.UsageAsync(ns));
    }

    [Fact]
    public async Task A_request_without_user_id_is_denied_by_default()
    {
        await using var anonymous = await fixture.RawClientAsync(sendUserId: false);
        var ns = NewNamespace();

        var get = await anonymous.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "k" });
        var set = await anonymous.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "k", value = 1, persona = WorkerFixture.TestPersona });

        AssertDenied(get, "a request without user_id is not granted any persona");
        AssertDenied(set, "a request without user_id is not granted any persona");
        Assert.Equal((0L, 0L, 0L), await fixture.Database.UsageAsync(ns));
    }

    [Fact]
    public async Task An_identity_without_a_grant_is_denied()
    {
        await using var stranger = await fixture.ClientAsync(fixture.Stranger);
        var ns = NewNamespace();

        AssertDenied(await stranger.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "k" }), $"identity '{fixture.Stranger}' is not granted any persona");
        AssertDenied(await stranger.CallAsync(KvOperations.Usage.Queue, new { @namespace = ns }), "is not granted any persona");
        AssertDenied(await stranger.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "c", persona = "writer" }), "is not granted any persona");
        Assert.Equal((0L, 0L, 0L), await fixture.Database.UsageAsync(ns));
    }

    [Fact]
    public async Task The_broker_refuses_a_user_id_that_is_not_the_connections_user()
    {
        var ns = NewNamespace();
        var factory = new ConnectionFactory { Uri = new UriBuilder(fixture.AmqpUri) { UserName = fixture.Reader, Password = PolicyFixture.Password }.Uri };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        var forged = new BasicProperties { UserId = fixture.Writer, ContentType = "application/json" };

        await Assert.ThrowsAnyAsync<Exception>(async () => await channel.BasicPublishAsync("", KvOperations.Set.Queue, mandatory: false, forged,
            Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"k","value":1}""")));

        Assert.Equal((ushort)406, channel.CloseReason?.ReplyCode); // PRECONDITION_FAILED: user_id does not match the connection
        Assert.Contains("user_id", channel.CloseReason?.ReplyText);
        await Task.Delay(300);
        Assert.Equal((0L, 0L, 0L), await fixture.Database.UsageAsync(ns));
    }

    [Fact]
    public async Task A_persona_confined_to_namespace_patterns_cannot_leave_them()
    {
        await using var writer = await fixture.ClientAsync(fixture.Writer);
        var (inside, outside) = (NewNamespace("team-a-"), NewNamespace("team-b-"));

        var allowed = await writer.CallAsync(KvOperations.Set.Queue, new { @namespace = inside, key = "k", value = 1, persona = "team-a" });
        var denied = await writer.CallAsync(KvOperations.Set.Queue, new { @namespace = outside, key = "k", value = 1, persona = "team-a" });
        var asDefaultPersona = await writer.CallAsync(KvOperations.Set.Queue, new { @namespace = outside, key = "k", value = 2 });

        Assert.Equal(1, allowed.GetProperty("value").GetInt32());
        AssertDenied(denied, $"persona 'team-a' may not use namespace '{outside}'");
        Assert.Equal(2, asDefaultPersona.GetProperty("value").GetInt32());
    }

    [Fact]
    public async Task The_usage_query_needs_the_read_flag_only()
    {
        await using var reader = await fixture.ClientAsync(fixture.Reader);

        var usage = await reader.CallAsync(KvOperations.Usage.Queue, new { @namespace = NewNamespace() });

        Assert.Equal(0, usage.GetProperty("used_bytes").GetInt64());
    }

    [Fact]
    public async Task A_masstransit_client_acts_as_its_broker_identity()
    {
        var bus = await fixture.StartClientBusAsync(fixture.Reader, PolicyFixture.Password);
        try
        {
            var ns = NewNamespace();
            var get = await bus.CreateRequestClient<KvGet>(new Uri($"queue:{KvOperations.Get.Queue}"))
                .GetResponse<KvGetResult, KvError>(new KvGet { Namespace = ns, Key = "k" });
            var set = await bus.CreateRequestClient<KvSet>(new Uri($"queue:{KvOperations.Set.Queue}"))
                .GetResponse<KvSetResult, KvError>(new KvSet { Namespace = ns, Key = "k", Value = JsonDocument.Parse("1").RootElement, Persona = "writer" });

            Assert.True(get.Is(out Response<KvGetResult>? found) && !found!.Message.Found);
            Assert.True(set.Is(out Response<KvError>? error));
            Assert.Equal(KvErrorCodes.AccessDeniedError, error!.Message.Error.Code);
            Assert.Equal((0L, 0L, 0L), await fixture.Database.UsageAsync(ns));
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    [Fact]
    public async Task A_malformed_request_from_another_identity_is_answered_and_kept_in_the_error_queue_without_its_user_id()
    {
        await using var reader = await fixture.ClientAsync(fixture.Reader);
        var messageId = Guid.NewGuid().ToString();

        var reply = await reader.CallRawAsync(KvOperations.Delete.Queue, "{\"namespace\": 5}"u8.ToArray(), messageId);
        var after = await reader.CallAsync(KvOperations.Get.Queue, new { @namespace = NewNamespace(), key = "k" });

        Assert.Equal(KvErrorCodes.KeyValueStoreError, reply.GetProperty("error").GetProperty("code").GetString());
        Assert.False(after.GetProperty("found").GetBoolean()); // the worker's channel survived the move
        var moved = await ErrorQueueMessageAsync(KvOperations.Delete.Queue + "_error", messageId);
        Assert.Null(moved.UserId);
        Assert.Equal(fixture.Reader, Encoding.UTF8.GetString((byte[])moved.Headers![ErrorQueueIdentity.UserIdHeader]!));
    }

    [Fact]
    public async Task A_request_cannot_name_a_caller_of_its_choosing_in_the_error_queue()
    {
        await using var anonymous = await fixture.RawClientAsync(sendUserId: false);
        await using var channel = await anonymous.Connection.CreateChannelAsync();
        var messageId = Guid.NewGuid().ToString();
        var claiming = new BasicProperties
        {
            ContentType = "application/json",
            MessageId = messageId,
            Headers = new Dictionary<string, object?> { [ErrorQueueIdentity.UserIdHeader] = fixture.Writer },
        };

        await channel.BasicPublishAsync("", KvOperations.Delete.Queue, mandatory: false, claiming, "{\"namespace\": 5}"u8.ToArray());

        var moved = await ErrorQueueMessageAsync(KvOperations.Delete.Queue + "_error", messageId);
        Assert.Null(moved.UserId);
        Assert.False(moved.Headers?.ContainsKey(ErrorQueueIdentity.UserIdHeader) == true, "the caller's own KV-User-Id header was kept");
    }

    [Fact]
    public async Task An_envelope_for_a_message_type_no_queue_consumes_is_answered_once_from_another_identity()
    {
        await using var reader = await fixture.ClientAsync(fixture.Reader);
        var envelope = """{"messageId":"7f0c6a2e-0000-0000-0000-000000000001","messageType":["urn:message:Other:Thing"],"message":{"namespace":"n","key":"k"}}""";

        var reply = await reader.CallRawAsync(KvOperations.Get.Queue, Encoding.UTF8.GetBytes(envelope), contentType: "application/vnd.masstransit+json");
        var after = await reader.CallAsync(KvOperations.Get.Queue, new { @namespace = NewNamespace(), key = "k" });

        Assert.Equal(KvErrorCodes.KeyValueStoreError, reply.GetProperty("error").GetProperty("code").GetString());
        Assert.False(after.GetProperty("found").GetBoolean());
        await Task.Delay(300);
        Assert.Empty(reader.Unmatched);
    }

    private async Task<IReadOnlyBasicProperties> ErrorQueueMessageAsync(string queue, string messageId)
    {
        var factory = new ConnectionFactory { Uri = fixture.AmqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            // The error queue is declared by the first move into it, maybe a moment after the reply.
            await using var channel = await connection.CreateChannelAsync();
            try
            {
                while (await channel.BasicGetAsync(queue, autoAck: false) is { } message)
                    if (message.BasicProperties.MessageId == messageId) return message.BasicProperties;
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
            {
            }
        }
        throw new TimeoutException($"message {messageId} did not reach {queue}");
    }
}
