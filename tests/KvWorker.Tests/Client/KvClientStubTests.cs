using KvWorker.Client;
using VersionConflictException = KvWorker.Client.VersionConflictException;

namespace KvWorker.Tests.Client;

/// <summary>The client's error mapping, time-outs and retries, against a stub that answers as told.</summary>
public sealed class KvClientStubTests(StubWorker stub) : IClassFixture<StubWorker>
{
    private static KvGet Request(string key) => new() { Namespace = "n", Key = key };

    public static TheoryData<string, Type> ErrorCodes => new()
    {
        { KvErrorCodes.KeyValueStoreError, typeof(KeyValueStoreException) },
        { KvErrorCodes.NamespaceQuotaExceededError, typeof(NamespaceQuotaExceededException) },
        { KvErrorCodes.GlobalQuotaExceededError, typeof(GlobalQuotaExceededException) },
        { KvErrorCodes.InvalidValueTypeError, typeof(InvalidValueTypeException) },
        { KvErrorCodes.ValueSerializationError, typeof(ValueSerializationException) },
        { KvErrorCodes.AccessDeniedError, typeof(AccessDeniedException) },
        { KvErrorCodes.StoreUnavailableError, typeof(StoreUnavailableException) },
        { "VersionConflictError", typeof(VersionConflictException) },
        { "SomeFutureError", typeof(KeyValueStoreException) },
    };

    [Theory]
    [MemberData(nameof(ErrorCodes))]
    public async Task Each_error_code_is_raised_as_its_own_exception_with_code_and_message(string code, Type exceptionType)
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);

        var error = await Assert.ThrowsAnyAsync<KeyValueStoreException>(() => client.GetAsync(Request(code)));

        Assert.Equal(exceptionType, error.GetType());
        Assert.Equal(code, error.Code);
        Assert.Equal($"stub says {code}", error.Message);
        Assert.Equal(code, error.Error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Each_call_carries_a_fresh_time_ordered_message_id()
    {
        // UUIDv7: the worker keeps recent requests' identities in an index they then grow at one end of.
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        await Assert.ThrowsAsync<AccessDeniedException>(() => client.GetAsync(Request(KvErrorCodes.AccessDeniedError)));
        await Task.Delay(5);
        await Assert.ThrowsAsync<AccessDeniedException>(() => client.GetAsync(Request(KvErrorCodes.AccessDeniedError)));

        var ids = stub.Requests.TakeLast(2).Select(request => request.MessageId!).ToArray();
        Assert.All(ids, id => Assert.Equal(7, Guid.Parse(id).Version));
        Assert.True(string.CompareOrdinal(ids[0], ids[1]) < 0, $"{ids[0]} then {ids[1]}");
        Assert.InRange(Convert.ToInt64(ids[0].Replace("-", "")[..12], 16), before, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    [Fact]
    public async Task A_request_rabbitmq_refuses_fails_at_once_with_its_reason_and_the_client_goes_on()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);
        var calls = new KvCallOptions { Timeout = TimeSpan.FromSeconds(60) };
        var inFlight = client.GetAsync(Request(StubWorker.Silent), calls);

        // RabbitMQ refuses a user_id that is not the connection's user by closing the channel.
        var refused = await Assert.ThrowsAsync<KvBrokerException>(() => client.CallRawAsync(KvOperations.Get.Queue,
            """{"namespace":"n","key":"k"}"""u8.ToArray(), new KvRawCallOptions { UserId = "somebody-else", Timeout = TimeSpan.FromSeconds(60) }));
        var alsoEnded = await Assert.ThrowsAsync<KvBrokerException>(() => inFlight);
        var next = await Assert.ThrowsAsync<AccessDeniedException>(() => client.GetAsync(Request(KvErrorCodes.AccessDeniedError), calls));

        Assert.Contains("user_id", refused.Message);
        Assert.Contains("user_id", alsoEnded.Message);
        Assert.Equal("stub says AccessDeniedError", next.Message);
    }

    [Fact]
    public async Task A_call_in_flight_when_rabbitmq_closes_the_channel_names_the_message_id_to_retry_with()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);
        var messageId = "in-flight-" + Guid.NewGuid().ToString("N");
        var inFlight = client.GetAsync(Request(StubWorker.Silent), new KvCallOptions { MessageId = messageId, Timeout = TimeSpan.FromSeconds(60) });
        await WaitForRequestAsync(messageId);

        await Assert.ThrowsAsync<KvBrokerException>(() => client.CallRawAsync(KvOperations.Get.Queue,
            """{"namespace":"n","key":"k"}"""u8.ToArray(), new KvRawCallOptions { UserId = "somebody-else", Timeout = TimeSpan.FromSeconds(60) }));
        var ended = await Assert.ThrowsAsync<KvBrokerException>(() => inFlight);

        // The request went out and may have been applied: only its message_id retries it safely.
        Assert.Equal(messageId, ended.MessageId);
        Assert.Contains(messageId, ended.Message);
    }

    [Fact]
    public async Task A_resend_that_finds_the_connection_closed_names_the_message_id_the_first_attempt_went_out_with()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri, new KvClientOptions { RetriesOnTimeout = 1 });
        var messageId = "resend-" + Guid.NewGuid().ToString("N");
        var call = client.GetAsync(Request(StubWorker.Silent), new KvCallOptions { MessageId = messageId, Timeout = TimeSpan.FromMilliseconds(500) });
        await WaitForRequestAsync(messageId);

        // Gone before the resend: the first attempt went out and may have been applied.
        await client.Connection.CloseAsync(200, "going away", TimeSpan.FromSeconds(5), abort: false);
        var ended = await Assert.ThrowsAsync<KvBrokerException>(() => call);

        Assert.Equal(messageId, ended.MessageId);
        Assert.Contains(messageId, ended.Message);
    }

    private async Task WaitForRequestAsync(string messageId)
    {
        for (var waited = 0; !stub.Requests.Any(request => request.MessageId == messageId); waited += 20)
        {
            Assert.True(waited < 10_000, $"the stub did not receive {messageId}");
            await Task.Delay(20);
        }
    }

    [Theory]
    [InlineData(StubWorker.NotJson, "is not JSON")]
    [InlineData(StubWorker.WrongShape, "is not a KvGetResult")]
    public async Task A_reply_no_worker_sends_raises_the_clients_invalid_reply_exception(string key, string problem)
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);

        var invalid = await Assert.ThrowsAsync<KvInvalidReplyException>(() => client.GetAsync(Request(key)));

        Assert.Equal(KvOperations.Get.Queue, invalid.Queue);
        Assert.StartsWith($"the reply on kv_get {problem}", invalid.Message);
    }

    [Fact]
    public async Task A_reply_that_is_not_json_raises_the_invalid_reply_exception_from_the_json_call_too()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);

        var invalid = await Assert.ThrowsAsync<KvInvalidReplyException>(() => client.CallJsonAsync(KvOperations.Get, Request(StubWorker.NotJson)));

        Assert.StartsWith("the reply on kv_get is not JSON", invalid.Message);
    }

    [Fact]
    public async Task A_version_conflict_carries_the_current_version()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);

        var conflict = await Assert.ThrowsAsync<VersionConflictException>(() => client.GetAsync(Request("VersionConflictError")));

        Assert.Equal(StubWorker.CurrentVersion, conflict.CurrentVersion);
    }

    [Fact]
    public async Task A_time_out_names_the_message_id_to_retry_with()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);
        var messageId = "retry-me-" + Guid.NewGuid().ToString("N");

        var timedOut = await Assert.ThrowsAsync<KvTimeoutException>(() =>
            client.GetAsync(Request(StubWorker.Silent), new KvCallOptions { MessageId = messageId, Timeout = TimeSpan.FromMilliseconds(300) }));

        Assert.Equal(messageId, timedOut.MessageId);
        Assert.Equal(KvOperations.Get.Queue, timedOut.Queue);
        Assert.Contains(messageId, timedOut.Message);
        Assert.IsAssignableFrom<TimeoutException>(timedOut);
    }

    [Fact]
    public async Task A_time_out_beyond_a_day_is_refused_before_anything_is_sent()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);
        var messageId = Guid.NewGuid().ToString();

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            client.GetAsync(Request(StubWorker.Silent), new KvCallOptions { MessageId = messageId, Timeout = KvCallOptions.MaxTimeout + TimeSpan.FromSeconds(1) }));
        await Task.Delay(300);

        Assert.DoesNotContain(stub.Requests, request => request.MessageId == messageId);
    }

    [Fact]
    public async Task Without_retries_the_client_sends_a_request_once()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri);
        var messageId = Guid.NewGuid().ToString();

        await Assert.ThrowsAsync<KvTimeoutException>(() =>
            client.GetAsync(Request(StubWorker.SecondDelivery), new KvCallOptions { MessageId = messageId, Timeout = TimeSpan.FromMilliseconds(500) }));
        await Task.Delay(300);

        Assert.Single(stub.Requests, request => request.MessageId == messageId);
    }

    [Fact]
    public async Task A_retry_on_time_out_resends_with_the_same_message_id()
    {
        await using var client = await KvClient.ConnectAsync(stub.AmqpUri, new KvClientOptions { RetriesOnTimeout = 2 });
        var before = stub.Requests.Count;

        var result = await client.GetAsync(Request(StubWorker.SecondDelivery), new KvCallOptions { Timeout = TimeSpan.FromMilliseconds(500) });

        Assert.False(result.Found);
        var attempts = stub.Requests.Skip(before).ToList();
        Assert.Equal(2, attempts.Count);                                               // answered on the second delivery: no third
        Assert.Single(attempts.Select(request => request.MessageId).Distinct());
        Assert.Single(attempts.Select(request => request.CorrelationId).Distinct());   // one call, whichever attempt is answered
        Assert.All(attempts, request => Assert.Equal("500", request.Expiration));
    }
}
