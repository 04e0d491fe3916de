using RabbitMQ.Client;

namespace KvWorker.Tests.Cli;

/// <summary>The kv command against a live worker: human output, --json output and exit codes.</summary>
[Collection(WorkerCollection.Name)]
public sealed class KvCliTests(WorkerFixture worker)
{
    private static string NewNamespace() => "cli-" + Guid.NewGuid().ToString("N");

    private Task<KvCliResult> Kv(params string[] arguments) => KvCliProcess.RunAsync(worker.AmqpUri, arguments);

    private static JsonElement ParseLine(string output) => JsonDocument.Parse(output.Trim()).RootElement;

    [Fact]
    public async Task Set_get_incr_delete_print_readable_results_and_exit_zero()
    {
        var ns = NewNamespace();

        var set = await Kv("set", ns, "plan", """{"step":1,"note":"café"}""", "--ttl", "600");
        var get = await Kv("get", ns, "plan");
        var first = await Kv("incr", ns, "turns");
        var second = await Kv("incr", ns, "turns", "--by", "41");
        var delete = await Kv("delete", ns, "plan");
        var deleteAgain = await Kv("delete", ns, "plan");

        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Equal($"set {ns}/plan (expires in 600 s)", set.Output.Trim());
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.True(JsonElement.DeepEquals(ParseLine("""{"step":1,"note":"café"}"""), ParseLine(get.Output)), get.ToString());
        Assert.Contains("\n  \"step\": 1", get.Output); // indented for people
        Assert.Matches(@"^ttl: \d+(\.\d)? s remaining", get.Errors);
        Assert.Equal("1", first.Output.Trim());
        Assert.Equal("42", second.Output.Trim());
        Assert.Equal($"deleted {ns}/plan", delete.Output.Trim());
        Assert.True(deleteAgain.ExitCode == 0, deleteAgain.ToString());
        Assert.Equal($"{ns}/plan not found: nothing deleted", deleteAgain.Output.Trim());
    }

    [Fact]
    public async Task Json_output_is_the_workers_reply_on_one_line()
    {
        var ns = NewNamespace();

        var set = await Kv("set", ns, "k", "[1,2]", "--json");
        var incr = await Kv("incr", ns, "c", "--by", "5", "--initial", "10", "--ttl", "60", "--json");
        var get = await Kv("get", ns, "k", "--json");

        Assert.Equal($$"""{"namespace":"{{ns}}","key":"k","value":[1,2],"version":1}""", set.Output.Trim());
        var counter = ParseLine(incr.Output);
        Assert.Equal(15, counter.GetProperty("value").GetInt64());
        Assert.Equal(60, counter.GetProperty("ttl_seconds").GetDouble());
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"k","found":true,"value":[1,2]}""", get.Output.Trim());
    }

    [Fact]
    public async Task Get_of_a_missing_key_exits_4_with_found_false_in_json()
    {
        var ns = NewNamespace();

        var human = await Kv("get", ns, "missing");
        var json = await Kv("get", ns, "missing", "--json");

        Assert.Equal(4, human.ExitCode);
        Assert.Equal("", human.Output);
        Assert.Contains($"{ns}/missing not found", human.Errors);
        Assert.Equal(4, json.ExitCode);
        Assert.False(ParseLine(json.Output).GetProperty("found").GetBoolean());
    }

    [Fact]
    public async Task Incr_of_a_value_that_is_not_an_integer_exits_1_with_the_error_code()
    {
        var ns = NewNamespace();
        await Kv("set", ns, "text", "\"not a number\"");

        var human = await Kv("incr", ns, "text");
        var json = await Kv("incr", ns, "text", "--json");

        Assert.Equal(1, human.ExitCode);
        Assert.StartsWith("kv: InvalidValueTypeError: ", human.Errors);
        Assert.Equal(1, json.ExitCode);
        Assert.Equal(KvErrorCodes.InvalidValueTypeError, ParseLine(json.Output).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_value_over_the_quota_read_from_stdin_is_rejected_with_exit_1()
    {
        var ns = NewNamespace();
        var big = JsonSerializer.Serialize(new string('x', 1024 * 1024 + 1));

        var result = await KvCliProcess.RunWithInputAsync(worker.AmqpUri, big, "set", ns, "big", "-");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("kv: NamespaceQuotaExceededError: ", result.Errors);
    }

    [Fact]
    public async Task Usage_shows_bytes_and_entries_against_the_quota()
    {
        var ns = NewNamespace();
        await Kv("set", ns, "a", "\"12345678\""); // 10 bytes of compact JSON
        await Kv("set", ns, "b", "[1,2,3]");      // 7 bytes

        var human = await Kv("usage", ns);
        var json = await Kv("usage", ns, "--json");

        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Contains("entries       2", human.Output);
        Assert.Contains("used          17 bytes of 1,048,576 bytes (0%)", human.Output);
        var usage = ParseLine(json.Output);
        Assert.Equal(17, usage.GetProperty("used_bytes").GetInt64());
        Assert.Equal(2, usage.GetProperty("entries").GetInt64());
        Assert.Equal(1024 * 1024, usage.GetProperty("quota_bytes").GetInt64());
    }

    [Fact]
    public async Task Invalid_command_lines_exit_2_with_a_message()
    {
        var notJson = await Kv("set", NewNamespace(), "k", "hello");
        var missingKey = await Kv("get", NewNamespace());
        var badUrl = await Kv("get", "n", "k", "--url", "http://localhost/");
        var badTimeout = await Kv("get", "n", "k", "--timeout", "0");

        Assert.Equal(2, notJson.ExitCode);
        Assert.Contains("not valid JSON", notJson.Errors);
        Assert.Equal(2, missingKey.ExitCode);
        Assert.Contains("Required argument missing", missingKey.Errors);
        Assert.Equal(2, badUrl.ExitCode);
        Assert.Contains("--url must be an AMQP URI", badUrl.Errors);
        Assert.Equal(2, badTimeout.ExitCode);
        Assert.Contains("--timeout must be a positive number", badTimeout.Errors);
    }

    [Fact]
    public async Task Persona_is_sent_with_the_request_and_judged_by_the_policy()
    {
        var ns = NewNamespace();

        var allowed = await Kv("--persona", BrokerFixture.TestPersona, "incr", ns, "c");
        var denied = await Kv("incr", ns, "c", "--persona", "somebody-else", "--json");

        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.Equal(1, denied.ExitCode);
        Assert.Equal(KvErrorCodes.AccessDeniedError, ParseLine(denied.Output).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Every_command_has_help()
    {
        foreach (var command in new[] { "get", "set", "delete", "incr", "usage", "events" })
        {
            var help = await Kv(command, "--help");
            Assert.True(help.ExitCode == 0, help.ToString());
            Assert.Contains($"kv {command}", help.Output);
            Assert.Contains("--json", help.Output);
        }
    }

    [Fact]
    public async Task A_broker_that_cannot_be_reached_exits_3_with_a_clear_message()
    {
        var result = await Kv("get", "n", "k", "--url", "amqp://guest:guest@127.0.0.1:1/");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("kv: cannot reach RabbitMQ at amqp://127.0.0.1:1/", result.Errors);
        Assert.DoesNotContain("guest:guest", result.Errors); // no password in messages
    }

    [Fact]
    public async Task A_virtual_host_without_a_worker_exits_3_naming_the_missing_queue()
    {
        var empty = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
        await TestServers.CreateVirtualHostAsync(empty);
        try
        {
            var url = new UriBuilder(worker.Broker) { Path = "/" + empty }.Uri;
            var result = await KvCliProcess.RunAsync(url, "get", "n", "k");

            Assert.Equal(3, result.ExitCode);
            Assert.Contains("there is no queue kv_get", result.Errors);
        }
        finally
        {
            await TestServers.DeleteVirtualHostAsync(empty);
        }
    }

    [Fact]
    public async Task Events_prints_each_published_event_as_it_arrives()
    {
        var ns = NewNamespace();
        using var json = KvCliProcess.Start(worker.AmqpUri, null, "events", "--json", "--count", "2");
        using var human = KvCliProcess.Start(worker.AmqpUri, null, "events", "--count", "1");
        await json.WaitForErrorTextAsync("following", TimeSpan.FromSeconds(30));
        await human.WaitForErrorTextAsync("following", TimeSpan.FromSeconds(30));

        await PublishAsync(nameof(NamespaceQuotaExceeded), new NamespaceQuotaExceeded
        {
            Namespace = ns, Key = "plan", QuotaBytes = 100, UsedBytes = 90, AttemptedBytes = 20, Persona = "researcher",
            At = DateTimeOffset.UnixEpoch,
        });
        await PublishAsync(nameof(KvEntriesExpired), new KvEntriesExpired { Namespace = ns, Count = 3, BytesFreed = 42, At = DateTimeOffset.UnixEpoch });

        var jsonResult = await json.WaitForExitAsync(TimeSpan.FromSeconds(30));
        var humanResult = await human.WaitForExitAsync(TimeSpan.FromSeconds(30));
        var lines = jsonResult.Output.Trim().Split('\n').Select(ParseLine).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal("NamespaceQuotaExceeded", lines[0].GetProperty("event").GetString());
        Assert.Equal(ns, lines[0].GetProperty("data").GetProperty("namespace").GetString());
        Assert.Equal(20, lines[0].GetProperty("data").GetProperty("attempted_bytes").GetInt64());
        Assert.Equal("KvEntriesExpired", lines[1].GetProperty("event").GetString());
        Assert.Equal(3, lines[1].GetProperty("data").GetProperty("count").GetInt64());
        Assert.Equal(0, humanResult.ExitCode);
        Assert.StartsWith($"NamespaceQuotaExceeded namespace={ns} key=plan quota_bytes=100 used_bytes=90 attempted_bytes=20 persona=researcher", humanResult.Output);
    }

    [Fact]
    public async Task Events_shows_the_quota_rejection_the_worker_publishes()
    {
        var ns = NewNamespace();
        using var events = KvCliProcess.Start(worker.AmqpUri, null, "events", "--json");
        await events.WaitForErrorTextAsync("following", TimeSpan.FromSeconds(30));

        var rejected = await KvCliProcess.RunWithInputAsync(worker.AmqpUri, JsonSerializer.Serialize(new string('x', 1024 * 1024)), "set", ns, "big", "-");

        Assert.Equal(1, rejected.ExitCode);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!events.Output.Contains(ns, StringComparison.Ordinal) && DateTime.UtcNow < deadline) await Task.Delay(100);
        var line = ParseLine(events.Output.Split('\n').Single(l => l.Contains(ns, StringComparison.Ordinal)));
        Assert.Equal(nameof(NamespaceQuotaExceeded), line.GetProperty("event").GetString());
        Assert.Equal("big", line.GetProperty("data").GetProperty("key").GetString());
        Assert.Equal(1024 * 1024 + 2, line.GetProperty("data").GetProperty("attempted_bytes").GetInt64());
    }

    /// <summary>Publishes an event as the worker does: plain JSON on the fanout exchange named like it.</summary>
    private async Task PublishAsync<T>(string exchange, T message)
    {
        await using var connection = await new ConnectionFactory { Uri = worker.AmqpUri }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var properties = new BasicProperties { ContentType = "application/json" };
        await channel.BasicPublishAsync(exchange, "", mandatory: false, properties, JsonSerializer.SerializeToUtf8Bytes(message));
    }
}
