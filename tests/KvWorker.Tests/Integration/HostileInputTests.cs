using System.Text;
using KvWorker.Amqp;

namespace KvWorker.Tests.Integration;

/// <summary>What model-generated tool calls may send: each gets one clear error reply and changes nothing.</summary>
[Collection(WorkerCollection.Name)]
public sealed class HostileInputTests(WorkerFixture worker)
{
    private const string Invalid = "KeyValueStoreError";

    /// <summary>Queue, body ({ns} becomes a fresh namespace), expected error code and content type.</summary>
    public static TheoryData<string, string, string, string?> Requests()
    {
        var longName = new string('n', 129);
        var longKey = new string('k', 513);
        var hugeName = new string('n', 1024 * 1024);
        var tooManyKeys = string.Join(",", Enumerable.Range(0, 101).Select(i => "\"k" + i + "\""));
        var data = new TheoryData<string, string, string, string?>
        {
            // Not JSON, or not a JSON object.
            { KvOperations.Get.Queue, """{"namespace":"{ns}","key":""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, "\u00ff\u00fe\u0001garbage", Invalid, "application/json" },
            { KvOperations.Delete.Queue, "null", Invalid, "application/json" },
            { KvOperations.Delete.Queue, "42", Invalid, "application/json" },
            { KvOperations.Get.Queue, "\"kv_get\"", Invalid, "application/json" },
            { KvOperations.Increment.Queue, "[]", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1}""", Invalid, "application/vnd.masstransit+json" },
            // Wrong JSON types, field by field.
            { KvOperations.Get.Queue, """{"namespace":5,"key":"k"}""", Invalid, "application/json" },
            { KvOperations.Get.Queue, """{"namespace":["{ns}"],"key":"k"}""", Invalid, "application/json" },
            { KvOperations.Delete.Queue, """{"namespace":"{ns}","key":{"k":1}}""", Invalid, "application/json" },
            { KvOperations.Delete.Queue, """{"namespace":"{ns}","key":true}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":"60"}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":true}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":"1"}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":true}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","initial_value":"0"}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","initial_value":[0]}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","ttl_seconds":{}}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"persona":5}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"provider":{}}""", Invalid, "application/json" },
            // Missing fields.
            { KvOperations.Get.Queue, """{"key":"k"}""", Invalid, "application/json" },
            { KvOperations.Delete.Queue, """{"namespace":"{ns}"}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k"}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, "{}", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":null,"key":"k","value":1}""", Invalid, "application/json" },
            // Empty, oversized and control-character names.
            { KvOperations.Set.Queue, """{"namespace":"","key":"k","value":1}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"","value":1}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, $$"""{"namespace":"{{longName}}","key":"k","value":1}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, $$"""{"namespace":"{ns}","key":"{{longKey}}","value":1}""", Invalid, "application/json" },
            { KvOperations.Get.Queue, $$"""{"namespace":"{{hugeName}}","key":"k"}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}\u0000","key":"k","value":1}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"a\u0000b","value":1}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"line\nbreak"}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"del\u007f"}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"c1\u0085"}""", Invalid, "application/json" },
            { KvOperations.Delete.Queue, """{"namespace":"{ns}","key":"\ud800"}""", Invalid, "application/json" },
            // TTLs.
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":0}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":-1}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":-0.0}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":NaN}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":"NaN"}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":Infinity}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":1e309}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"ttl_seconds":1e12}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","ttl_seconds":"ten"}""", Invalid, "application/json" },
            // Deltas.
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":1.5}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":1e2}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":9223372036854775808}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":-9223372036854775809}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":1e400}""", Invalid, "application/json" },
            { KvOperations.Increment.Queue, """{"namespace":"{ns}","key":"k","delta":null}""", Invalid, "application/json" },
            // Versions, listing, touch and bulk reads.
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"if_version":1.5}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":1,"if_version":"3"}""", Invalid, "application/json" },
            { KvOperations.Delete.Queue, """{"namespace":"{ns}","key":"k","if_version":-1}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"namespace":"{ns}","limit":0}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"namespace":"{ns}","limit":100000}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"namespace":"{ns}","limit":"10"}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"namespace":"{ns}","cursor":"not a cursor!"}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"namespace":"{ns}","cursor":"_-8"}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"namespace":"{ns}","cursor":"AA"}""", Invalid, "application/json" }, // a key of one NUL, which no key is
            { KvOperations.List.Queue, """{"namespace":"{ns}","prefix":"a\u0000"}""", Invalid, "application/json" },
            { KvOperations.List.Queue, """{"prefix":"a"}""", Invalid, "application/json" },
            { KvOperations.Touch.Queue, """{"namespace":"{ns}","key":"k"}""", Invalid, "application/json" },
            { KvOperations.Touch.Queue, """{"namespace":"{ns}","key":"k","ttl_seconds":0}""", Invalid, "application/json" },
            { KvOperations.Touch.Queue, """{"namespace":"{ns}","key":"k","ttl_seconds":"soon"}""", Invalid, "application/json" },
            { KvOperations.GetMany.Queue, $$"""{"namespace":"{ns}","keys":[{{tooManyKeys}}]}""", Invalid, "application/json" },
            { KvOperations.GetMany.Queue, """{"namespace":"{ns}","keys":"k"}""", Invalid, "application/json" },
            { KvOperations.GetMany.Queue, """{"namespace":"{ns}","keys":["a",""]}""", Invalid, "application/json" },
            { KvOperations.GetMany.Queue, """{"namespace":"{ns}","keys":["a",null]}""", Invalid, "application/json" },
            { KvOperations.GetMany.Queue, """{"namespace":"{ns}"}""", Invalid, "application/json" },
            { KvOperations.GetMany.Queue, """{"namespace":"{ns}","keys":null}""", Invalid, "application/json" },
            // Values: deeper than the limit, deeper than System.Text.Json's default, deeper than the worker reads at all, larger than the quota.
            { KvOperations.Set.Queue, $$"""{"namespace":"{ns}","key":"k","value":{{NestedJson.Arrays(40)}}}""", "ValueSerializationError", "application/json" },
            { KvOperations.Set.Queue, $$"""{"namespace":"{ns}","key":"k","value":{{NestedJson.Arrays(65)}}}""", "ValueSerializationError", "application/json" },
            { KvOperations.Set.Queue, $$"""{"namespace":"{ns}","key":"k","value":{{NestedJson.Arrays(KvJsonDepth.MaxMessage)}}}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, $$"""{"namespace":"{ns}","key":"k","value":{{NestedJson.Arrays(100_000)}}}""", Invalid, "application/json" },
            { KvOperations.Set.Queue, $$"""{"namespace":"{ns}","key":"k","value":"{{new string('x', 2 * 1024 * 1024)}}"}""", "NamespaceQuotaExceededError", "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":"\udc00"}""", "ValueSerializationError", "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":{"\ud800":1}}""", "ValueSerializationError", "application/json" },
            { KvOperations.Set.Queue, """{"namespace":"{ns}","key":"k","value":[{"a":{"\udc00x":1}}]}""", "ValueSerializationError", "application/json" },
            // MassTransit envelopes whose reply address cannot be read: answered on reply_to.
            { KvOperations.Get.Queue, """{"requestId":"\ud800","responseAddress":"queue:x","messageType":["urn:message:KvWorker.Contracts:KvGet"],"message":{"namespace":"{ns}","key":"k"}}""", Invalid, "application/vnd.masstransit+json" },
            { KvOperations.Get.Queue, """{"requestId":"7d3c3f52-8d0c-4c57-a0a4-2b1f1f0e9a11","responseAddress":"queue:\ud800","messageType":["urn:message:KvWorker.Contracts:KvGet"],"message":{"namespace":"{ns}","key":"k"}}""", Invalid, "application/vnd.masstransit+json" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task A_hostile_request_gets_one_error_reply_and_changes_nothing(string queue, string body, string code, string? contentType)
    {
        await using var client = await worker.RawClientAsync();
        var ns = "hostile-" + Guid.NewGuid().ToString("N");

        var reply = await client.CallRawAsync(queue, Encoding.UTF8.GetBytes(body.Replace("{ns}", ns, StringComparison.Ordinal)), contentType: contentType);

        var error = reply.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        var message = error.GetProperty("message").GetString();
        Assert.False(string.IsNullOrWhiteSpace(message));
        // Rejected by reading or validation, never by a fault the worker did not expect.
        Assert.DoesNotContain(ErrorReplyFilter.UnexpectedFaultPrefix, message);
        await Task.Delay(200);
        Assert.Empty(client.Unmatched);
        Assert.Equal((0L, 0L, 0L), await worker.Database.UsageAsync(ns));
    }

    [Theory]
    [InlineData("urn:message:KvWorker.Contracts:KvGet", "found")]      // read as a request, answered on reply_to
    [InlineData("urn:message:Other.Contracts:Thing", "error")]         // no operation reads it
    public async Task A_masstransit_envelope_from_a_plain_client_is_answered_on_reply_to(string messageType, string member)
    {
        await using var client = await worker.RawClientAsync();
        var envelope = $$$"""{"messageId":"{{{Guid.NewGuid()}}}","messageType":["{{{messageType}}}"],"message":{"namespace":"envelope","key":"k"}}""";

        var reply = await client.CallRawAsync(KvOperations.Get.Queue, Encoding.UTF8.GetBytes(envelope), contentType: "application/vnd.masstransit+json");

        Assert.True(reply.TryGetProperty(member, out _), reply.GetRawText());
        await Task.Delay(200);
        Assert.Empty(client.Unmatched);
    }

    [Fact]
    public async Task An_unreadable_raw_json_request_is_answered_at_its_masstransit_response_address_header()
    {
        await using var client = await worker.RawClientAsync();
        await using var channel = await client.Connection.CreateChannelAsync();
        var replies = "kvtest-replies-" + Guid.NewGuid().ToString("N");
        await channel.QueueDeclareAsync(replies, durable: true, exclusive: false, autoDelete: false); // as MassTransit declares it
        try
        {
            var requestId = Guid.NewGuid();
            var properties = new RabbitMQ.Client.BasicProperties
            {
                ContentType = "application/json",
                Headers = new Dictionary<string, object?> { ["MT-Response-Address"] = "queue:" + replies, ["RequestId"] = requestId.ToString() },
            };
            await channel.BasicPublishAsync("", KvOperations.Get.Queue, false, properties, """{"namespace":5,"key":"k"}"""u8.ToArray());

            using var document = JsonDocument.Parse((await QueueReader.NextAsync(channel, replies, TimeSpan.FromSeconds(10))).Body);
            var reply = document.RootElement;

            Assert.Equal(requestId.ToString(), reply.GetProperty("requestId").GetString());
            var error = reply.GetProperty("message").GetProperty("error");
            Assert.Equal(Invalid, error.GetProperty("code").GetString());
            Assert.StartsWith("malformed request: ", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            await channel.QueueDeleteAsync(replies, ifUnused: false, ifEmpty: false);
            await channel.ExchangeDeleteAsync(replies);
        }
    }

    [Fact]
    public async Task Unknown_extra_fields_are_ignored()
    {
        await using var client = await worker.RawClientAsync();
        var ns = "extra-" + Guid.NewGuid().ToString("N");

        var reply = await client.CallRawAsync(KvOperations.Set.Queue, Encoding.UTF8.GetBytes(
            $$"""{"namespace":"{{ns}}","key":"k","value":1,"tool_call_id":"call_1","arguments":{"nested":[1,2]},"ttl":5}"""));

        Assert.Equal($$"""{"namespace":"{{ns}}","key":"k","value":1,"version":1}""", reply.GetRawText());
    }

    [Fact]
    public async Task Sql_looking_names_and_values_are_stored_as_plain_data()
    {
        await using var client = await worker.RawClientAsync();
        var ns = "x'; DROP TABLE kv_entries; -- " + Guid.NewGuid().ToString("N");
        const string key = "' OR '1'='1";
        const string value = "'); DELETE FROM kv_namespace_usage; --";

        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key, value });
        var read = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key });
        var other = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "anything" });

        Assert.Equal(value, read.GetProperty("value").GetString());
        Assert.False(other.GetProperty("found").GetBoolean());
        Assert.Equal(1, (await worker.Database.UsageAsync(ns)).LiveEntries);
    }
}
