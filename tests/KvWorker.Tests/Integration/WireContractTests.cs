using KvWorker.Amqp;
using System.Diagnostics;
using System.Text;
using MassTransit;

namespace KvWorker.Tests.Integration;

/// <summary>Both kinds of client against the worker, through the real RabbitMQ and PostgreSQL.</summary>
[Collection(WorkerCollection.Name)]
public sealed class WireContractTests(WorkerFixture worker)
{
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");

    [Fact]
    public async Task A_masstransit_client_runs_all_four_operations()
    {
        var ns = NewNamespace();
        var value = JsonDocument.Parse("""{"plan":["search","summarise"],"step":1}""").RootElement;

        var set = await worker.Client<KvSet>(KvOperations.Set.Queue).GetResponse<KvSetResult, KvError>(
            new KvSet { Namespace = ns, Key = "plan", Value = value, TtlSeconds = 120 });
        var get = await worker.Client<KvGet>(KvOperations.Get.Queue).GetResponse<KvGetResult, KvError>(new KvGet { Namespace = ns, Key = "plan" });
        var increment = await worker.Client<KvIncrement>(KvOperations.Increment.Queue).GetResponse<KvIncrementResult, KvError>(
            new KvIncrement { Namespace = ns, Key = "turns", Delta = 3 });
        var delete = await worker.Client<KvDelete>(KvOperations.Delete.Queue).GetResponse<KvDeleteResult, KvError>(new KvDelete { Namespace = ns, Key = "plan" });

        Assert.True(set.Is(out Response<KvSetResult>? setResult));
        Assert.Equal(120, setResult!.Message.TtlSeconds);
        Assert.True(get.Is(out Response<KvGetResult>? getResult));
        Assert.True(JsonElement.DeepEquals(value, getResult!.Message.Value!.Value));
        Assert.InRange(getResult.Message.TtlSeconds!.Value, 100, 120);
        Assert.True(increment.Is(out Response<KvIncrementResult>? counter));
        Assert.Equal(3, counter!.Message.Value.GetInt64());
        Assert.True(delete.Is(out Response<KvDeleteResult>? deleted) && deleted!.Message.Deleted);
    }

    [Fact]
    public async Task A_masstransit_client_gets_kv_error_for_a_quota_breach()
    {
        var big = JsonDocument.Parse($"\"{new string('x', 2 * 1024 * 1024)}\"").RootElement;

        var response = await worker.Client<KvSet>(KvOperations.Set.Queue).GetResponse<KvSetResult, KvError>(
            new KvSet { Namespace = NewNamespace(), Key = "big", Value = big });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error!.Message.Error.Code);
    }

    [Fact]
    public async Task A_masstransit_request_whose_message_cannot_be_read_gets_a_kv_error_not_a_time_out()
    {
        var badMessage = """{"namespace":"n","key":"k","delta":"many"}""";

        var response = await worker.Client<KvIncrement>(KvOperations.Increment.Queue).GetResponse<KvIncrementResult, KvError>(
            new KvIncrement { Namespace = "n", Key = "k" },
            request => request.UseExecute(send => send.Serializer = new EnvelopeWithMessageSerializer(badMessage)));

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error!.Message.Error.Code);
        Assert.Contains("$.delta", error.Message.Error.Message);
    }

    /// <summary>Writes a MassTransit envelope around a message body of the test's choosing.</summary>
    private sealed class EnvelopeWithMessageSerializer(string messageJson) : IMessageSerializer
    {
        public System.Net.Mime.ContentType ContentType { get; } = new(MassTransitEnvelope.ContentType);

        public MessageBody GetMessageBody<T>(SendContext<T> context) where T : class
        {
            var envelope = $$$"""
                {"messageId":"{{{context.MessageId}}}","requestId":"{{{context.RequestId}}}",
                 "responseAddress":"{{{context.ResponseAddress}}}","destinationAddress":"{{{context.DestinationAddress}}}",
                 "messageType":["urn:message:KvWorker.Contracts:KvIncrement"],"message":{{{messageJson}}},"headers":{}}
                """;
            return new StringMessageBody(envelope);
        }
    }

    [Fact]
    public async Task A_plain_amqp_client_gets_plain_json_replies_with_its_correlation_id()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();
        var body = Encoding.UTF8.GetBytes($$$"""{"namespace":"{{{ns}}}","key":"k","value":{"a":[1,true,null]}}""");

        var (setReply, properties) = await client.CallWithPropertiesAsync(KvOperations.Set.Queue, body);
        var getReply = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "k" });

        Assert.Equal("application/json", properties.ContentType);
        Assert.False(string.IsNullOrEmpty(properties.CorrelationId));
        // The original tool's shapes, and the entry's version after them.
        Assert.Equal($$$"""{"namespace":"{{{ns}}}","key":"k","value":{"a":[1,true,null]},"version":1}""", setReply);
        Assert.Equal($$$"""{"namespace":"{{{ns}}}","key":"k","found":true,"value":{"a":[1,true,null]},"version":1}""", getReply.GetRawText());
    }

    [Fact]
    public async Task Versions_compare_and_set_listing_touch_and_bulk_reads_answer_in_their_documented_shapes()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();

        var created = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "plan", value = "v1", if_version = 0 });
        var version = created.GetProperty("version").GetInt64();
        var conflict = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "plan", value = "v2", if_version = version + 1 });
        var updated = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "plan", value = "v2", if_version = version });
        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "steps" });
        var touched = await client.CallAsync(KvOperations.Touch.Queue, new { @namespace = ns, key = "steps", ttl_seconds = 120 });
        var missingTouch = await client.CallAsync(KvOperations.Touch.Queue, new { @namespace = ns, key = "none", ttl_seconds = (double?)null });
        var page = await client.CallAsync(KvOperations.List.Queue, new { @namespace = ns, limit = 1 });
        var rest = await client.CallAsync(KvOperations.List.Queue, new { @namespace = ns, cursor = page.GetProperty("next_cursor").GetString() });
        var many = await client.CallAsync(KvOperations.GetMany.Queue, new { @namespace = ns, keys = new[] { "steps", "none", "plan" } });
        var deleteConflict = await client.CallAsync(KvOperations.Delete.Queue, new { @namespace = ns, key = "gone", if_version = 3 });

        Assert.Equal($$$"""{"error":{"code":"VersionConflictError","message":"'plan' in namespace '{{{ns}}}' has version {{{version}}}, not the if_version {{{version + 1}}} asked for","current_version":{{{version}}}}}""",
            conflict.GetRawText());
        Assert.True(updated.GetProperty("version").GetInt64() > version);
        Assert.True(touched.GetProperty("found").GetBoolean());
        Assert.Equal(120, touched.GetProperty("ttl_seconds").GetDouble(), precision: 0);
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"none","found":false}""", missingTouch.GetRawText());
        Assert.Equal("plan", Assert.Single(page.GetProperty("keys").EnumerateArray()).GetProperty("key").GetString());
        var last = Assert.Single(rest.GetProperty("keys").EnumerateArray());
        Assert.Equal(["key", "size_bytes", "version", "ttl_seconds"], last.EnumerateObject().Select(p => p.Name));
        Assert.False(rest.TryGetProperty("next_cursor", out _));
        Assert.Equal([true, false, true], many.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("found").GetBoolean()));
        Assert.Equal("VersionConflictError", deleteConflict.GetProperty("error").GetProperty("code").GetString());
        Assert.False(deleteConflict.GetProperty("error").TryGetProperty("current_version", out _));
    }

    [Fact]
    public async Task Plain_replies_have_the_shapes_of_the_original_results()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();

        var missing = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "nothing" });
        var counter = await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "c", delta = 5, initial_value = 10, ttl_seconds = 60 });
        var deleted = await client.CallAsync(KvOperations.Delete.Queue, new { @namespace = ns, key = "c" });
        var storedNull = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "n", value = (object?)null });
        var readNull = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "n" });

        Assert.Equal($$"""{"namespace":"{{ns}}","key":"nothing","found":false}""", missing.GetRawText());
        Assert.Equal(15, counter.GetProperty("value").GetInt64());
        Assert.Equal(60, counter.GetProperty("ttl_seconds").GetDouble(), precision: 0);
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"c","deleted":true}""", deleted.GetRawText());
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"n","value":null,"version":2}""", storedNull.GetRawText());
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"n","found":true,"value":null,"version":2}""", readNull.GetRawText());
    }

    [Fact]
    public async Task A_value_with_a_nul_escape_round_trips_through_rabbitmq()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();
        var body = Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"nul","value":"before\u0000after"}""");

        await client.CallRawAsync(KvOperations.Set.Queue, body);
        var read = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "nul" });

        Assert.Equal("before\0after", read.GetProperty("value").GetString());
        Assert.Contains("\\u0000", read.GetRawText());
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("")]
    [InlineData("[1,2,3]")]
    [InlineData("""{"namespace":"n"}""")]
    [InlineData("""{"namespace":5,"key":"k"}""")]
    [InlineData("""{"namespace":"n","key":"k","delta":"many"}""")]
    [InlineData("""{"namespace":"n","key":"k","delta":1.5}""")]
    [InlineData("""{"namespace":"n","key":"k","delta":99999999999999999999}""")]
    [InlineData("""{"namespace":"n","key":"k","ttl_seconds":NaN}""")]
    public async Task Malformed_bodies_get_one_key_value_store_error_reply(string body)
    {
        await using var client = await worker.RawClientAsync();

        var reply = await client.CallRawAsync(KvOperations.Increment.Queue, Encoding.UTF8.GetBytes(body));

        Assert.Equal(KvErrorCodes.KeyValueStoreError, reply.GetProperty("error").GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(reply.GetProperty("error").GetProperty("message").GetString()));
        await Task.Delay(200);
        Assert.Empty(client.Unmatched);
    }

    [Fact]
    public async Task Eight_concurrent_clients_making_fifty_increments_each_end_at_exactly_400()
    {
        var ns = NewNamespace();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            await using var client = await worker.RawClientAsync();
            for (var i = 0; i < 50; i++)
                await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "counter" });
        }));

        await using var reader = await worker.RawClientAsync();
        var final = await reader.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "counter" });
        Assert.Equal(400, final.GetProperty("value").GetInt64());
    }

    [Theory]
    [InlineData(40, "ValueSerializationError")]   // deeper than limits:max_value_depth
    [InlineData(500, "KeyValueStoreError")]       // deeper than the JSON reader accepts at all
    public async Task Deeply_nested_values_are_rejected_with_one_reply(int depth, string code)
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();
        var value = NestedJson.Arrays(depth);

        var reply = await client.CallRawAsync(KvOperations.Set.Queue,
            Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"deep","value":{{value}}}"""));

        Assert.Equal(code, reply.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal((0L, 0L, 0L), await worker.Database.UsageAsync(ns));
        await Task.Delay(200);
        Assert.Empty(client.Unmatched);
    }

    [Fact]
    public async Task A_value_larger_than_the_quota_is_rejected_through_the_worker()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();

        var reply = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "huge", value = new string('x', 3 * 1024 * 1024) });

        Assert.Equal("NamespaceQuotaExceededError", reply.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal((0L, 0L, 0L), await worker.Database.UsageAsync(ns));
    }

    [Fact]
    public async Task A_request_without_content_type_is_read_as_json()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();

        var reply = await client.CallRawAsync(KvOperations.Increment.Queue,
            Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"c"}"""), contentType: null);

        Assert.Equal(1, reply.GetProperty("value").GetInt64());
    }

    [Fact]
    public async Task Ttl_entries_expire_through_the_worker()
    {
        await using var client = await worker.RawClientAsync();
        var ns = NewNamespace();
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "short", value = "x", ttl_seconds = 0.5 });
        Assert.True((await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "short" })).GetProperty("found").GetBoolean());

        await Task.Delay(800);

        Assert.False((await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "short" })).GetProperty("found").GetBoolean());
        Assert.False((await client.CallAsync(KvOperations.Delete.Queue, new { @namespace = ns, key = "short" })).GetProperty("deleted").GetBoolean());
    }

    [Fact]
    public async Task Namespaces_are_isolated_through_the_worker()
    {
        await using var client = await worker.RawClientAsync();
        var (a, b) = (NewNamespace(), NewNamespace());
        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = a, key = "c", delta = 10 });
        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = b, key = "c", delta = 1 });

        Assert.Equal(10, (await client.CallAsync(KvOperations.Get.Queue, new { @namespace = a, key = "c" })).GetProperty("value").GetInt64());
        Assert.Equal(1, (await client.CallAsync(KvOperations.Get.Queue, new { @namespace = b, key = "c" })).GetProperty("value").GetInt64());
    }

    [Fact]
    public async Task The_python_pika_client_from_the_rpc_tutorial_runs_all_four_operations_and_an_error()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "python", "kv_rpc_tutorial_client.py");
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.Environment["KV_AMQP_URL"] = worker.AmqpUri.ToString();
        start.Environment["KV_NAMESPACE"] = NewNamespace();
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(process.ExitCode == 0, $"python client failed:\n{await output}\n{await errors}");
        Assert.Contains("all four operations and the error reply behaved as specified", await output);
    }
}
