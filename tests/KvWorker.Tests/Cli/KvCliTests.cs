using Npgsql;
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
        var brief = await Kv("set", ns, "brief", "1", "--ttl", "0.001");
        var get = await Kv("get", ns, "plan");
        var first = await Kv("incr", ns, "turns");
        var second = await Kv("incr", ns, "turns", "--by", "41");
        var delete = await Kv("delete", ns, "plan");
        var deleteAgain = await Kv("delete", ns, "plan");

        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.Equal($"set {ns}/plan, version 1 (expires in 600 s)", set.Output.Trim());
        Assert.Equal($"set {ns}/brief, version 2 (expires in under 0.1 s)", brief.Output.Trim());
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
    public async Task Compare_and_set_list_touch_and_mget_from_the_command_line()
    {
        var ns = NewNamespace();

        var created = await Kv("set", ns, "plan", "\"v1\"", "--if-version", "0");
        var conflict = await Kv("set", ns, "plan", "\"v2\"", "--if-version", "0");
        var updated = await Kv("set", ns, "plan", "\"v2\"", "--if-version", "1");
        await Kv("set", ns, "notes", "[]");
        var touched = await Kv("touch", ns, "notes", "--ttl", "90");
        var missing = await Kv("touch", ns, "none", "--persistent");
        var noTtl = await Kv("touch", ns, "notes");
        var both = await Kv("touch", ns, "notes", "--ttl", "5", "--persistent");
        var firstPage = await Kv("list", ns, "--limit", "1");
        var all = await Kv("list", ns, "--prefix", "p");
        var many = await Kv("mget", ns, "plan", "none", "notes");
        var staleDelete = await Kv("delete", ns, "plan", "--if-version", "1");

        Assert.Equal($"set {ns}/plan, version 1", created.Output.Trim());
        Assert.Equal(1, conflict.ExitCode);
        Assert.Contains("VersionConflictError", conflict.Errors);
        Assert.Equal($"set {ns}/plan, version 2", updated.Output.Trim());
        Assert.Equal($"touched {ns}/notes, version 4 (expires in 90 s)", touched.Output.Trim());
        Assert.Equal(4, missing.ExitCode);
        Assert.Equal(2, noTtl.ExitCode);
        Assert.Contains("needs either --ttl SECONDS or --persistent", noTtl.Errors);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("takes --ttl SECONDS or --persistent, not both", both.Errors);
        Assert.StartsWith("notes\t2 bytes\tversion 4\texpires in", firstPage.Output.Trim());
        Assert.Contains($"more: kv list {ns} --limit 1 --cursor ", firstPage.Errors);
        Assert.Equal("plan\t4 bytes\tversion 2", all.Output.Trim());
        Assert.Equal(["plan\t\"v2\"", "none\t(not found)", "notes\t[]"], many.Output.Trim().Split('\n'));
        Assert.Equal(1, staleDelete.ExitCode);
        Assert.Contains("has version 2", staleDelete.Errors);
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
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"k","found":true,"value":[1,2],"version":1}""", get.Output.Trim());
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
        Assert.Contains("the value is not valid JSON (line 1, byte 1: 'h' is an invalid start of a value)", notJson.Errors);
        Assert.Equal(2, missingKey.ExitCode);
        Assert.Contains("kv: <key> missing: kv get <namespace> <key>", missingKey.Errors);
        Assert.Equal(2, badUrl.ExitCode);
        Assert.Contains("--url must be an AMQP URI", badUrl.Errors);
        Assert.Equal(2, badTimeout.ExitCode);
        Assert.Contains("--timeout must be a number of seconds from 0.001 to 86400", badTimeout.Errors);
    }

    [Fact]
    public async Task An_amqp_uri_rabbitmqs_client_refuses_exits_2_saying_why()
    {
        // A virtual host is one path segment ('/' in it written %2F): RabbitMQ's client refuses a/b.
        var given = await Kv("get", "n", "k", "--url", "amqp://localhost/a/b");
        var fromVariable = await KvCliProcess.RunAsync(new Uri("amqp://localhost/a/b"), "get", "n", "k");

        Assert.True(given.ExitCode == 2, given.ToString());
        Assert.StartsWith("kv: --url must be an AMQP URI such as amqp://guest:guest@localhost:5672/, not 'amqp://localhost/a/b' (Multiple segments", given.Errors);
        Assert.True(fromVariable.ExitCode == 2, fromVariable.ToString());
        Assert.StartsWith("kv: KV_RABBITMQ_URL must be an AMQP URI such as amqp://guest:guest@localhost:5672/, not 'amqp://localhost/a/b' (Multiple segments", fromVariable.Errors);
        Assert.DoesNotContain("   at ", given.Errors + fromVariable.Errors);
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
        foreach (var command in new[] { "get", "set", "delete", "incr", "list", "touch", "mget", "usage", "purge", "events" })
        {
            var help = await Kv(command, "--help");
            Assert.True(help.ExitCode == 0, help.ToString());
            Assert.Contains($"kv {command}", help.Output);
            Assert.Contains("--json", help.Output);
        }
    }

    [Fact]
    public async Task Events_help_lists_only_the_options_that_apply_to_it()
    {
        var help = await Kv("events", "--help");

        Assert.True(help.ExitCode == 0, help.ToString());
        Assert.Contains("--count", help.Output);
        Assert.Contains("--url", help.Output);
        foreach (var option in new[] { "--persona", "--provider", "--timeout" }) Assert.DoesNotContain(option, help.Output);
        Assert.DoesNotContain("reply", help.Output);
    }

    [Fact]
    public async Task Incr_help_says_a_missing_counter_is_created_at_initial_plus_by()
    {
        var ns = NewNamespace();

        var help = await Kv("incr", "--help");
        var created = await Kv("incr", ns, "c", "--initial", "41");

        Assert.Contains("created at --initial + --by", help.Output);
        Assert.DoesNotContain("Starting value", help.Output);
        Assert.Equal("42", created.Output.Trim());
    }

    [Theory]
    [InlineData("--ttl must be a positive number of seconds, not 'abc'", "set", "n", "k", "1", "--ttl", "abc")]
    [InlineData("--ttl must be a positive number of seconds, not 'NaN'", "incr", "n", "k", "--ttl", "NaN")]
    [InlineData("--ttl must be a positive number of seconds, not '0'", "set", "n", "k", "1", "--ttl", "0")]
    [InlineData("--limit must be a whole number from 1 to 1000, not '0'", "list", "n", "--limit", "0")]
    [InlineData("--limit must be a whole number from 1 to 1000, not '1001'", "list", "n", "--limit", "1001")]
    [InlineData("namespace must not be empty", "get", "", "k")]
    [InlineData("key must not be empty", "set", "n", "", "1")]
    [InlineData("namespace must not be empty", "purge", "")]
    [InlineData("--timeout must be a number of seconds from 0.001 to 86400, not '1e-8'", "get", "n", "k", "--timeout", "1e-8")]
    [InlineData("--by must be a 64-bit integer, not 'x'", "incr", "n", "k", "--by", "x")]
    [InlineData("--initial must be a 64-bit integer, not '1.5'", "incr", "n", "k", "--initial", "1.5")]
    [InlineData("--timeout must be a number of seconds from 0.001 to 86400, not 'abc'", "get", "n", "k", "--timeout", "abc")]
    [InlineData("--timeout must be a number of seconds from 0.001 to 86400, not '5000000'", "incr", "n", "k", "--timeout", "5000000")]
    [InlineData("--count must be a positive number of events, not 'x'", "events", "--count", "x")]
    [InlineData("--count must be a positive number of events, not '0'", "events", "--count", "0")]
    [InlineData("--count must be a positive number of events, not '-1'", "events", "--count", "-1")]
    public async Task A_bad_option_value_exits_2_with_one_plain_line(string message, params string[] arguments)
    {
        var result = await Kv(arguments);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Equal([$"kv: {message}", "Run 'kv --help' or 'kv <command> --help' for usage."], result.Errors.TrimEnd().Split('\n'));
        Assert.Equal("", result.Output);
    }

    [Theory]
    [InlineData("--persona", "p")]
    [InlineData("--timeout", "5")]
    public async Task A_request_option_before_events_is_refused_not_ignored(string option, string value)
    {
        var result = await Kv(option, value, "events", "--count", "1");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"kv: events does not take {option}", result.Errors.Trim());
    }

    [Fact]
    public async Task A_value_from_stdin_may_start_with_a_byte_order_mark()
    {
        var ns = NewNamespace();

        var result = await KvCliProcess.RunWithInputAsync(worker.AmqpUri, "\uFEFF{\"plan\": [1, 2]}", "set", ns, "k", "-");
        var read = await Kv("get", ns, "k", "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("\"value\":{\"plan\":[1,2]}", read.Output);
    }

    [Fact]
    public void A_value_from_stdin_that_is_not_utf8_is_refused_not_replaced()
    {
        byte[] latin1 = [(byte)'"', (byte)'c', (byte)'a', (byte)'f', 0xE9, (byte)'"'];

        var error = Assert.Throws<KvWorker.Cli.CliException>(() => KvWorker.Cli.Json.ParseValue(latin1));

        Assert.Equal((2, "the value is not UTF-8 text"), (error.ExitCode, error.Message));
    }

    [Fact]
    public async Task An_unknown_command_is_one_line_and_the_hint()
    {
        var result = await Kv("frobnicate");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal(["kv: unknown command 'frobnicate'", "Run 'kv --help' or 'kv <command> --help' for usage."], result.Errors.TrimEnd().Split('\n'));
    }

    [Fact]
    public async Task A_refused_login_is_told_apart_from_an_unreachable_broker()
    {
        var url = new UriBuilder(worker.AmqpUri) { UserName = "kvtest-nobody", Password = "s3cret" }.Uri;

        var result = await Kv("get", "n", "k", "--url", url.ToString());

        Assert.Equal(3, result.ExitCode);
        Assert.Contains($"kv: RabbitMQ at {new UriBuilder(url) { UserName = "", Password = "" }.Uri} refused the login of user 'kvtest-nobody'", result.Errors);
        Assert.DoesNotContain("cannot reach", result.Errors);
        Assert.DoesNotContain("s3cret", result.Errors);
    }

    [Fact]
    public async Task Get_of_a_stored_null_prints_null()
    {
        var ns = NewNamespace();
        await Kv("set", ns, "k", "null");

        var human = await Kv("get", ns, "k");
        var json = await Kv("get", ns, "k", "--json");

        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Equal("null", human.Output.Trim());
        Assert.Equal($$"""{"namespace":"{{ns}}","key":"k","found":true,"value":null,"version":1}""", json.Output.Trim());
    }

    [Fact]
    public async Task A_name_starting_with_an_at_sign_is_a_name_not_a_response_file()
    {
        var ns = NewNamespace();
        // A file of that name beside kv must not be read in its place either.
        var file = Path.Combine(Environment.CurrentDirectory, "alice");
        await File.WriteAllTextAsync(file, "--json");
        try
        {
            var set = await Kv("set", ns, "@alice", "\"hi\"");
            var get = await Kv("get", ns, "@alice");
            var missing = await Kv("get", ns, "@nobody");

            Assert.True(set.ExitCode == 0, set.ToString());
            Assert.Equal($"set {ns}/@alice, version 1", set.Output.Trim());
            Assert.Equal("\"hi\"", get.Output.Trim());
            Assert.True(missing.ExitCode == 4, missing.ToString());
            Assert.Equal($"kv: {ns}/@nobody not found", missing.Errors.Trim());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Purge_removes_a_namespaces_expired_entries_and_says_how_many()
    {
        // The worker's own scheduled purge may take the entries first; it runs once a minute, so another try will do.
        KvCliResult? purged = null;
        string ns = "";
        for (var attempt = 0; attempt < 3 && purged?.Output.StartsWith("purged 2 expired entries", StringComparison.Ordinal) != true; attempt++)
        {
            ns = NewNamespace();
            await Kv("set", ns, "a", "\"12345678\"", "--ttl", "0.2");
            await Kv("set", ns, "b", "[1,2,3]", "--ttl", "0.2");
            await Kv("set", ns, "kept", "1");
            await Task.Delay(300);
            purged = await Kv("purge", ns);
        }
        var json = await Kv("purge", ns, "--json");
        var usage = await Kv("usage", ns);

        Assert.True(purged!.ExitCode == 0, purged.ToString());
        Assert.StartsWith("purged 2 expired entries (17 bytes) from 1 namespace; forgot ", purged.Output);
        Assert.Contains($"\n  {ns}: 2 entries, 17 bytes", purged.Output);
        Assert.Equal(ns, ParseLine(json.Output).GetProperty("namespace").GetString());
        Assert.Equal(0, ParseLine(json.Output).GetProperty("entries").GetInt64());
        Assert.Contains("entries       1", usage.Output);
    }

    [Fact]
    public void Purge_summary_says_one_byte_and_one_entry_in_the_singular()
    {
        var result = new KvPurgeResult
        {
            Ran = true,
            Entries = 1,
            BytesFreed = 1,
            RequestsForgotten = 1,
            Namespaces = [new KvEntriesExpired { Namespace = "exp", Count = 1, BytesFreed = 1, At = DateTimeOffset.UnixEpoch }],
        };

        Assert.Equal(
            ["purged 1 expired entry (1 byte) from 1 namespace; forgot 1 request identity past their retention", "  exp: 1 entry, 1 byte"],
            KvWorker.Cli.KvCommands.PurgeSummary(result));
    }

    [Fact]
    public async Task Purge_says_so_when_another_purge_was_running()
    {
        // Every purge holds this advisory lock while it runs: holding it is "another purge running".
        await using var connection = await worker.Database.DataSource.OpenConnectionAsync();
        await PurgeLockAsync(connection, "SELECT pg_advisory_lock($1)");
        try
        {
            var human = await Kv("purge");
            var json = await Kv("purge", "--json");

            Assert.True(human.ExitCode == 0, human.ToString());
            Assert.Equal("another purge was running, so this one did nothing: try again once it has finished", human.Output.Trim());
            Assert.False(ParseLine(json.Output).GetProperty("ran").GetBoolean());
        }
        finally
        {
            // Released here: a pooled connection would keep holding it.
            await PurgeLockAsync(connection, "SELECT pg_advisory_unlock($1)");
        }
    }

    private static async Task PurgeLockAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = PostgresPurge.PurgeLockKey });
        await command.ExecuteScalarAsync();
    }

    [Fact]
    public async Task A_timed_out_incr_expires_in_its_queue_and_a_worker_started_later_never_applies_it()
    {
        var virtualHost = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
        await TestServers.CreateVirtualHostAsync(virtualHost);
        try
        {
            var settings = worker.WorkerSettings(new Dictionary<string, string?> { ["RabbitMq:VirtualHost"] = virtualHost });
            var url = new UriBuilder(worker.Broker) { Path = "/" + virtualHost }.Uri;
            var ns = NewNamespace();
            using (var declaring = BrokerFixture.BuildWorker(settings))
            {
                // A worker declares the queues and stops: kv_increment exists, and nobody consumes it.
                await declaring.StartAsync();
                for (var deadline = DateTime.UtcNow.AddSeconds(30); (await QueueAsync(url, KvOperations.Increment.Queue))?.ConsumerCount is not > 0;)
                {
                    Assert.True(DateTime.UtcNow < deadline, "the worker did not start consuming kv_increment");
                    await Task.Delay(100);
                }
                await declaring.StopAsync();
            }

            var timedOut = await KvCliProcess.RunAsync(url, "incr", ns, "c", "--timeout", "1");
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            var queued = await QueueAsync(url, KvOperations.Increment.Queue);
            using var later = BrokerFixture.BuildWorker(settings);
            await later.StartAsync();
            var counter = await KvCliProcess.RunAsync(url, "incr", ns, "c");
            await later.StopAsync();

            Assert.Equal(3, timedOut.ExitCode);
            Assert.Contains("no reply on kv_increment within 1 s", timedOut.Errors);
            Assert.Equal((0u, 0u), (queued!.MessageCount, queued.ConsumerCount));
            Assert.True(counter.ExitCode == 0, counter.ToString());
            Assert.Equal("1", counter.Output.Trim()); // the timed-out increment was never applied
        }
        finally
        {
            await TestServers.DeleteVirtualHostAsync(virtualHost);
        }
    }

    /// <summary>The queue's message and consumer counts, or null when nobody has declared it.</summary>
    private static async Task<QueueDeclareOk?> QueueAsync(Uri url, string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = url }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return await channel.QueueDeclarePassiveAsync(queue);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            return null;
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
    public async Task Connecting_is_bounded_by_the_timeout_option()
    {
        // Takes the connection and never answers the AMQP handshake, as a hung broker does.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var url = $"amqp://guest:guest@127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}/";
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var result = await Kv("--timeout", "2", "get", "n", "k", "--url", url);

        Assert.True(result.ExitCode == 3, result.ToString());
        Assert.Contains("no AMQP handshake within 2 s", result.Errors);
        // Starting kv adds a few seconds. The default wait is 30; RabbitMQ's client alone, cancelled during
        // the handshake, gave up 5 to 25 s after the time-out.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
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
            Namespace = ns, Key = "the plan", QuotaBytes = 100, UsedBytes = 90, AttemptedBytes = 20, Persona = "researcher",
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
        Assert.Contains("until 1 event has arrived", humanResult.Errors);
        Assert.DoesNotContain("Ctrl+C", humanResult.Errors + jsonResult.Errors);
        // A string that is not one word is quoted, so the line still splits into its fields.
        Assert.StartsWith($"NamespaceQuotaExceeded namespace={ns} key=\"the plan\" quota_bytes=100 used_bytes=90 attempted_bytes=20 persona=researcher", humanResult.Output);
        Assert.Single(humanResult.Output.Trim().Split('\n')); // --count 1: the second event is not printed
    }

    [Fact]
    public async Task Events_shows_the_quota_rejection_the_worker_publishes()
    {
        var ns = NewNamespace();
        using var events = KvCliProcess.Start(worker.AmqpUri, null, "events", "--json");
        await events.WaitForErrorTextAsync("(Ctrl+C to stop)", TimeSpan.FromSeconds(30));

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
