using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvWorker.Amqp;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using Xunit.Abstractions;

namespace KvWorker.Tests.Integration;

/// <summary>A worker of its own for the fuzz run, so its error queues hold only what the fuzz sent.</summary>
public sealed class FuzzFixture : WorkerFixture
{
    // Every rejected request is logged as a warning; tens of thousands of them would drown the test output.
    protected override Task<IDictionary<string, string?>?> PrepareWorkerAsync() =>
        Task.FromResult<IDictionary<string, string?>?>(new Dictionary<string, string?> { ["Serilog:MinimumLevel:Override:KvWorker"] = "Error" });
}

[CollectionDefinition(Name)]
public sealed class FuzzCollection : ICollectionFixture<FuzzFixture>
{
    public const string Name = "fuzz";
}

[Collection(FuzzCollection.Name)]
public sealed class FuzzTests(FuzzFixture fixture, ITestOutputHelper output)
{
    private const int RequestsPerQueue = 10_000;
    private const int MaxInFlight = 2_000;
    private static readonly string[] Queues = [.. KvOperations.All.Select(operation => operation.Queue)];

    /// <summary>Fixed so a failure can be replayed; KV_FUZZ_SEED picks another.</summary>
    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("KV_FUZZ_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : 20_261_125;

    [Fact]
    public async Task Ten_thousand_malformed_requests_per_queue_each_get_one_reply_and_leave_known_entries_unchanged()
    {
        output.WriteLine($"fuzz seed {Seed} (set KV_FUZZ_SEED to replay another)");
        var knownNamespace = "known-" + Guid.NewGuid().ToString("N");
        var known = await WriteKnownEntriesAsync(knownNamespace);
        var usageBefore = await fixture.Database.UsageAsync(knownNamespace);
        var fuzzer = new RequestFuzzer(new Random(Seed), knownNamespace, fixture.BrokerUser.User);
        var requests = Queues.SelectMany(queue => Enumerable.Range(0, RequestsPerQueue).Select(_ => fuzzer.Next(queue))).ToList();
        requests = [.. requests.OrderBy(_ => fuzzer.Random.Next())]; // interleave the queues

        var stopwatch = Stopwatch.StartNew();
        var (replies, strays) = await SendAllAsync(requests);
        output.WriteLine($"{requests.Count} requests answered in {stopwatch.Elapsed.TotalSeconds:F1} s");
        foreach (var (code, count) in replies.Values.GroupBy(r => r.Code).Select(g => (g.Key, g.Count())).OrderByDescending(c => c.Item2))
            output.WriteLine($"  {code}: {count}");

        var duplicates = replies.Where(r => r.Value.Count != 1).Select(r => $"{r.Key} x{r.Value.Count}").ToList();
        Assert.True(duplicates.Count == 0, $"duplicate replies: {string.Join(", ", duplicates.Take(20))}");
        Assert.Equal(requests.Count, replies.Count);
        Assert.Empty(strays);
        Assert.DoesNotContain(UnexpectedFault, replies.Values.Select(reply => reply.Code));
        Assert.DoesNotContain(UnreadableReply, replies.Values.Select(reply => reply.Code));

        foreach (var queue in Queues)
            await fixture.WaitForConsumersAsync(queue, 1, TimeSpan.FromSeconds(5));
        await using var client = await fixture.RawClientAsync();
        var ns = "after-fuzz-" + Guid.NewGuid().ToString("N");
        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "alive", delta = 7 });
        Assert.Equal(7, (await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "alive" })).GetProperty("value").GetInt64());

        foreach (var queue in Queues)
        {
            foreach (var parked in new[] { queue + "_error", queue + "_skipped" })
            {
                var unanswered = (await DrainAsync(parked)).Where(id => id is null || !replies.ContainsKey(id)).ToList();
                Assert.True(unanswered.Count == 0, $"{unanswered.Count} messages in {parked} got no reply");
            }
        }

        foreach (var (key, expected) in known)
        {
            var entry = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = knownNamespace, key });
            Assert.Equal(expected, entry.GetProperty("value").GetRawText());
        }
        Assert.Equal(usageBefore, await fixture.Database.UsageAsync(knownNamespace));
    }

    private async Task<Dictionary<string, string>> WriteKnownEntriesAsync(string ns)
    {
        await using var client = await fixture.RawClientAsync();
        var known = new Dictionary<string, string>();
        for (var i = 0; i < 20; i++)
        {
            var key = "k" + i.ToString(CultureInfo.InvariantCulture);
            var reply = i % 2 == 0
                ? await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key, delta = i * 1000, ttl_seconds = 3600 })
                : await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key, value = new { index = i, text = "known \u0000 entry", list = new[] { 1, 2 } } });
            known[key] = reply.GetProperty("value").GetRawText();
        }
        return known;
    }

    /// <summary>Publishes everything with at most <see cref="MaxInFlight"/> unanswered; counts replies by correlation_id.</summary>
    private async Task<(ConcurrentDictionary<string, (int Count, string Code)> Replies, ConcurrentBag<string> Strays)> SendAllAsync(List<FuzzRequest> requests)
    {
        var replies = new ConcurrentDictionary<string, (int Count, string Code)>();
        var strays = new ConcurrentBag<string>();
        var sent = new ConcurrentDictionary<string, bool>();
        using var inFlight = new SemaphoreSlim(MaxInFlight);
        var allAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answered = 0;

        var factory = new ConnectionFactory { Uri = fixture.AmqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var replyQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true)).QueueName;
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            var correlationId = delivery.BasicProperties.CorrelationId;
            if (correlationId is null || !sent.ContainsKey(correlationId))
            {
                strays.Add(Encoding.UTF8.GetString(delivery.Body.Span));
                return Task.CompletedTask;
            }
            var code = ReplyCode(delivery.Body.Span);
            var (count, _) = replies.AddOrUpdate(correlationId, (1, code), (_, existing) => (existing.Count + 1, existing.Code));
            if (count == 1)
            {
                inFlight.Release();
                if (Interlocked.Increment(ref answered) == requests.Count) allAnswered.TrySetResult();
            }
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(replyQueue, autoAck: true, consumer);

        for (var i = 0; i < requests.Count; i++)
        {
            var request = requests[i];
            var correlationId = "fuzz-" + i.ToString(CultureInfo.InvariantCulture);
            sent[correlationId] = true;
            Assert.True(await inFlight.WaitAsync(TimeSpan.FromSeconds(60)), $"no reply for 60 s with {MaxInFlight} requests in flight");
            var properties = new BasicProperties
            {
                ContentType = request.ContentType,
                CorrelationId = correlationId,
                MessageId = Guid.NewGuid().ToString(),
                ReplyTo = replyQueue,
                UserId = request.UserId,
            };
            await channel.BasicPublishAsync("", request.Queue, mandatory: false, properties, request.Body);
        }

        var finished = await Task.WhenAny(allAnswered.Task, Task.Delay(TimeSpan.FromSeconds(240)));
        Assert.True(finished == allAnswered.Task, $"only {answered} of {requests.Count} requests were answered within 240 s");
        await Task.Delay(TimeSpan.FromSeconds(1)); // room for any duplicate reply to arrive
        return (replies, strays);
    }

    private const string UnexpectedFault = "unexpected fault";
    private const string UnreadableReply = "unreadable reply";

    private static string ReplyCode(ReadOnlySpan<byte> body)
    {
        try
        {
            using var reply = JsonDocument.Parse(body.ToArray());
            if (!reply.RootElement.TryGetProperty("error", out var error)) return "ok";
            // An error the worker did not expect is counted apart from validation's.
            return error.TryGetProperty("message", out var message) && message.GetString()?.StartsWith(ErrorReplyFilter.UnexpectedFaultPrefix, StringComparison.Ordinal) == true
                ? UnexpectedFault
                : error.GetProperty("code").GetString() ?? "?";
        }
        catch (JsonException)
        {
            return UnreadableReply;
        }
    }

    /// <summary>Empties a queue; returns each message's correlation_id. A queue never declared is empty.</summary>
    private async Task<List<string?>> DrainAsync(string queue)
    {
        var factory = new ConnectionFactory { Uri = fixture.AmqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var correlationIds = new List<string?>();
        try
        {
            while (await channel.BasicGetAsync(queue, autoAck: true) is { } message)
                correlationIds.Add(message.BasicProperties.CorrelationId);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            // No message was ever moved there.
        }
        output.WriteLine($"{queue}: {correlationIds.Count} messages");
        return correlationIds;
    }
}

public sealed record FuzzRequest(string Queue, byte[] Body, string? ContentType, string? UserId);

/// <summary>
/// Malformed, hostile and valid-looking requests. Valid-looking writes go to a few
/// fuzz namespaces; requests naming the known namespace are always invalid in one
/// way, so none of them may change it.
/// </summary>
public sealed class RequestFuzzer(Random random, string knownNamespace, string userId)
{
    private static readonly string?[] ContentTypes = ["application/json", "application/json", "application/json", "application/json", "application/json",
        "application/json", "application/json", "application/json", "application/json", "application/json", "application/json", "application/json",
        "application/json", "application/json", "application/json", "application/json", "application/json", "application/json",
        null, "text/plain", "application/vnd.masstransit+json", "application/octet-stream"];
    private static readonly string[] WrongTypes = ["5", "-1.5", "true", "false", "null", "[]", "{}", "[1,\"a\"]", "{\"a\":1}", "\"\"", "1e400", "99999999999999999999999"];
    private static readonly string[] BadNames = ["", "\\u0000", "a\\u0000b", "\\n", "tab\\there", "\\u007f", "\\u0085", "\\ud800", "\\udfff", "x\\u001fy"];
    private static readonly string[] BadTtls = ["0", "-1", "-0.0", "NaN", "\"NaN\"", "Infinity", "-Infinity", "1e309", "1e12", "31536001", "\"60\"", "true", "[60]", "{}", "\"ten\""];
    private static readonly string[] BadDeltas = ["1.5", "1e2", "1e400", "\"1\"", "true", "null", "9223372036854775808", "-9223372036854775809", "[1]", "{}", "1.0"];
    private static readonly string[] Personas = ["admin", "writer", "", " tester", "TESTER", "root\\u0000"];

    public Random Random { get; } = random;

    public FuzzRequest Next(string queue)
    {
        var contentType = ContentTypes[Random.Next(ContentTypes.Length)];
        var user = Random.Next(20) == 0 ? null : userId;
        var category = Random.Next(100);
        if (category < 10) return new FuzzRequest(queue, Garbage(), contentType, user);
        var body = category switch
        {
            < 20 => Truncated(ValidLooking(queue)),
            < 30 => Mutated(ValidLooking(queue)),
            < 38 => WithField(queue, RandomField(queue), WrongTypes[Random.Next(WrongTypes.Length)]),
            < 46 => BadName(queue),
            < 54 => WithField(queue, "ttl_seconds", BadTtls[Random.Next(BadTtls.Length)]),
            < 60 => queue == KvOperations.Increment.Queue ? WithField(queue, "delta", BadDeltas[Random.Next(BadDeltas.Length)]) : WithField(queue, "ttl_seconds", "0"),
            < 62 => WithField(queue, queue == KvOperations.Set.Queue ? "value" : "extra", NestedJson.Arrays(Random.Next(33, 3000))),
            < 65 => Envelope(queue, ref contentType),
            < 66 => queue == KvOperations.Set.Queue && Random.Next(4) == 0 ? WithField(queue, "value", "\"" + new string('x', 1024 * 1024 + 10) + "\"") : Mutated(ValidLooking(queue)),
            < 78 => NearMiss(queue, ref contentType, ref user),
            _ => ValidLooking(queue),
        };
        return new FuzzRequest(queue, Encoding.UTF8.GetBytes(body), contentType, user);
    }

    private byte[] Garbage()
    {
        var bytes = new byte[Random.Next(0, 200)];
        Random.NextBytes(bytes);
        return bytes;
    }

    private string Truncated(string body) => body[..Random.Next(0, body.Length)];

    private string Mutated(string body)
    {
        var chars = body.ToCharArray();
        const string replacements = "{}[]\",:\\0aZ \u0000\u00e9";
        for (var i = Random.Next(1, 4); i > 0; i--)
            chars[Random.Next(chars.Length)] = replacements[Random.Next(replacements.Length)];
        return new string(chars);
    }

    private static string Quote(string text) => JsonSerializer.Serialize(text);

    private string FuzzNamespace() => "fuzz-" + Random.Next(8).ToString(CultureInfo.InvariantCulture);
    private string FuzzKey() => "key-" + Random.Next(40).ToString(CultureInfo.InvariantCulture);

    private string RandomField(string queue)
    {
        // The request record's wire fields (value aside: any JSON is a value).
        var fields = KvOperations.All.Single(operation => operation.Queue == queue).RequestType.GetProperties()
            .SelectMany(p => p.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonPropertyNameAttribute), false))
            .Cast<System.Text.Json.Serialization.JsonPropertyNameAttribute>().Select(a => a.Name).Where(name => name != "value").ToArray();
        return fields[Random.Next(fields.Length)];
    }

    /// <summary>A well-formed request for the queue, as JSON members (namespace and key first).</summary>
    private List<(string Name, string Json)> Members(string queue, string ns, string key)
    {
        var members = new List<(string, string)> { ("namespace", Quote(ns)), ("key", Quote(key)) };
        if (queue == KvOperations.Set.Queue)
        {
            members.Add(("value", RandomValue(3)));
            if (Random.Next(3) == 0) members.Add(("ttl_seconds", (Random.NextDouble() * 600 + 0.5).ToString("R", CultureInfo.InvariantCulture)));
        }
        if (queue == KvOperations.Increment.Queue)
        {
            if (Random.Next(2) == 0) members.Add(("delta", Random.NextInt64(-1000, 1000).ToString(CultureInfo.InvariantCulture)));
            if (Random.Next(4) == 0) members.Add(("initial_value", Random.NextInt64(long.MinValue / 2, long.MaxValue / 2).ToString(CultureInfo.InvariantCulture)));
        }
        if (queue == KvOperations.Touch.Queue)
            members.Add(("ttl_seconds", Random.Next(3) == 0 ? "null" : (Random.NextDouble() * 600 + 0.5).ToString("R", CultureInfo.InvariantCulture)));
        if (queue == KvOperations.GetMany.Queue)
            members.Add(("keys", "[" + string.Join(",", Enumerable.Range(0, Random.Next(0, 5)).Select(_ => Quote(FuzzKey()))) + "]"));
        if (queue == KvOperations.List.Queue && Random.Next(2) == 0)
            members.Add(("limit", Random.Next(1, 50).ToString(CultureInfo.InvariantCulture)));
        if (queue is "kv_set" or "kv_delete" && Random.Next(5) == 0)
            members.Add(("if_version", Random.Next(0, 3).ToString(CultureInfo.InvariantCulture)));
        switch (Random.Next(10))
        {
            case 0: members.Add(("persona", Quote(WorkerFixture.TestPersona))); break;
            case 1: members.Add(("persona", "\"" + Personas[Random.Next(Personas.Length)] + "\"")); break;
            case 2: members.Add(("provider", Quote(Random.Next(2) == 0 ? "postgres" : "redis"))); break;
        }
        return members;
    }

    private static string Object(IEnumerable<(string Name, string Json)> members) =>
        "{" + string.Join(",", members.Select(m => Quote(m.Name) + ":" + m.Json)) + "}";

    private string ValidLooking(string queue) => Object(Members(queue, FuzzNamespace(), FuzzKey()));

    private string WithField(string queue, string field, string json)
    {
        var members = Members(queue, FuzzNamespace(), FuzzKey()).Where(m => m.Name != field).ToList();
        members.Insert(Random.Next(members.Count + 1), (field, json));
        return Object(members);
    }

    private string BadName(string queue)
    {
        var members = Members(queue, FuzzNamespace(), FuzzKey());
        var index = Random.Next(2); // namespace or key
        var name = Random.Next(8) switch
        {
            0 => new string('n', Random.Next(513, 5000)),
            1 => "fuzz-" + (char)Random.Next(0, 32) + "raw", // a raw control character: not even valid JSON
            _ => BadNames[Random.Next(BadNames.Length)],
        };
        members[index] = (members[index].Name, "\"" + name + "\"");
        return Object(members);
    }

    /// <summary>A request on the known namespace and keys that is wrong in exactly one way, so it must change nothing.</summary>
    private string NearMiss(string queue, ref string? contentType, ref string? user)
    {
        var members = Members(queue, knownNamespace, "k" + Random.Next(20).ToString(CultureInfo.InvariantCulture))
            .Where(m => m.Name is not ("persona" or "provider")).ToList();
        contentType = "application/json";
        user = userId;
        void Replace(string field, string json)
        {
            members.RemoveAll(m => m.Name == field);
            members.Add((field, json));
        }
        switch (Random.Next(queue == KvOperations.Increment.Queue ? 8 : queue == KvOperations.Set.Queue ? 7 : 5))
        {
            case 0: user = null; break;                                                     // no identity: default deny
            case 1: Replace("persona", Quote(Personas[Random.Next(2)])); break;             // a persona the identity does not own
            case 2: contentType = "application/vnd.masstransit+json"; break;                 // not an envelope
            case 3: Replace("key", WrongTypes[Random.Next(WrongTypes.Length)]); break;     // key of the wrong type
            case 4: Replace("provider", Quote("no-such-provider")); break;                  // unknown provider
            case 5: Replace("ttl_seconds", BadTtls[Random.Next(BadTtls.Length)]); break;  // bad TTL
            case 6: Replace(queue == KvOperations.Set.Queue ? "value" : "ttl_seconds", queue == KvOperations.Set.Queue ? NestedJson.Arrays(Random.Next(33, 100)) : "-5"); break;
            default: Replace("delta", BadDeltas[Random.Next(BadDeltas.Length)]); break;    // bad delta
        }
        return Object(members);
    }

    /// <summary>A MassTransit envelope (no response address, so reply_to is the address) of this queue's message type or another.</summary>
    private string Envelope(string queue, ref string? contentType)
    {
        contentType = "application/vnd.masstransit+json";
        var type = KvOperations.All.Single(operation => operation.Queue == queue).RequestType.Name;
        string[] messageTypes = ["urn:message:KvWorker.Contracts:" + type, "urn:message:KvWorker.Contracts:KvUsage", "urn:message:Other:Thing", "not a urn"];
        return Object([
            ("messageId", Quote(Guid.NewGuid().ToString())),
            ("messageType", "[" + Quote(messageTypes[Random.Next(messageTypes.Length)]) + "]"),
            ("message", Random.Next(4) == 0 ? WrongTypes[Random.Next(WrongTypes.Length)] : ValidLooking(queue)),
        ]);
    }

    private string RandomValue(int depth) => Random.Next(depth > 0 ? 8 : 5) switch
    {
        0 => Random.NextInt64(-1_000_000, 1_000_000).ToString(CultureInfo.InvariantCulture),
        1 => (Random.NextDouble() * 1000).ToString("R", CultureInfo.InvariantCulture),
        2 => Quote("v" + Random.Next(1000).ToString(CultureInfo.InvariantCulture) + (Random.Next(5) == 0 ? "\u0000\u00e9\U0001F600" : "")),
        3 => Random.Next(2) == 0 ? "true" : "false",
        4 => "null",
        5 or 6 => "[" + string.Join(",", Enumerable.Range(0, Random.Next(4)).Select(_ => RandomValue(depth - 1))) + "]",
        _ => "{" + string.Join(",", Enumerable.Range(0, Random.Next(4)).Select(i => Quote("f" + i.ToString(CultureInfo.InvariantCulture)) + ":" + RandomValue(depth - 1))) + "}",
    };
}
