using System.Diagnostics;
using StackExchange.Redis;

namespace KvWorker.Redis.Tests;

/// <summary>What the Redis adapter keeps in Redis, beyond the semantics the conformance suite checks.</summary>
public sealed class RedisAdapterTests(RedisFixture redis) : IClassFixture<RedisFixture>
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");
    private static StoredValue Value(string json) => StoredValue.From(JsonDocument.Parse(json).RootElement, maxDepth: 32);
    private IDatabase Db => redis.Connection.GetDatabase();

    [Fact]
    public async Task Values_are_stored_as_their_exact_compact_json_text()
    {
        var prefix = redis.NewIsolatedPrefix();
        await using var adapter = redis.Connect(redis.Options(prefix));
        var ns = NewNamespace();
        var value = Value("{ \"text\" : \"nul \\u0000, é, 😀\", \"n\" : [ 1.50, -0, 1E+400 ] }");

        await adapter.SetAsync(ns, "k", value, null, null, None);

        var keys = new RedisKeys(prefix);
        var stored = (byte[]?)await Db.HashGetAsync(keys.Values(ns), "k");
        Assert.Equal(System.Text.Encoding.UTF8.GetBytes(value.Json), stored);
        Assert.Equal(value.SizeBytes, (long)await Db.HashGetAsync(keys.Meta(ns), "bytes"));
    }

    [Fact]
    public async Task Usage_counters_match_the_stored_entries_after_concurrent_mixed_writes()
    {
        var prefix = redis.NewIsolatedPrefix();
        var keys = new RedisKeys(prefix);
        var replicas = Enumerable.Range(0, 3).Select(_ => redis.Connect(redis.Options(prefix, namespaceQuotaBytes: 400, globalQuotaBytes: 1000))).ToArray();
        var namespaces = Enumerable.Range(0, 4).Select(_ => NewNamespace()).ToArray();
        try
        {
            await Task.WhenAll(Enumerable.Range(0, 12).Select(worker => Task.Run(async () =>
            {
                var random = new Random(worker);
                var adapter = replicas[worker % replicas.Length];
                for (var i = 0; i < 60; i++)
                {
                    var ns = namespaces[random.Next(namespaces.Length)];
                    var key = "k" + random.Next(8);
                    double? ttl = random.Next(3) == 0 ? 0.05 : null;
                    try
                    {
                        switch (random.Next(3))
                        {
                            case 0: await adapter.SetAsync(ns, key, Value($"\"{new string('v', random.Next(1, 60))}\""), ttl, null, None); break;
                            case 1: await adapter.IncrementAsync(ns, key, random.Next(-1000, 1000), 0, ttl, null, None); break;
                            default: await adapter.DeleteAsync(ns, key, null, None); break;
                        }
                    }
                    catch (KvStoreException)
                    {
                        // quota rejections, or increments of string values
                    }
                }
            })));

            long totalBytes = 0;
            foreach (var ns in namespaces)
            {
                var fields = await Db.HashGetAllAsync(keys.Values(ns));
                var bytes = fields.Sum(field => (long)((byte[])field.Value!).Length);
                var usage = await replicas[0].UsageAsync(ns, None);
                Assert.Equal((bytes, (long)fields.Length), (usage.UsedBytes, usage.Entries));
                Assert.InRange(usage.UsedBytes, 0, 400);
                totalBytes += bytes;

                var expiring = await Db.SortedSetRangeByRankAsync(keys.Expiry(ns));
                Assert.All(expiring, key => Assert.Contains(fields, field => field.Name == key));
            }
            // No write was in flight and no replica died: the global counter is exact.
            Assert.Equal(totalBytes, (long)await Db.StringGetAsync(keys.GlobalBytes));
            Assert.InRange(totalBytes, 0, 1000);
        }
        finally
        {
            foreach (var replica in replicas) await replica.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_purge_takes_expired_entries_out_of_memory_counters_and_the_due_index()
    {
        var prefix = redis.NewIsolatedPrefix();
        var keys = new RedisKeys(prefix);
        await using var adapter = redis.Connect(redis.Options(prefix, globalQuotaBytes: 10_000));
        var (a, b) = (NewNamespace(), NewNamespace());
        for (var i = 0; i < 5; i++) await adapter.SetAsync(a, "gone" + i, Value("\"expires\""), 0.1, null, None);
        await adapter.SetAsync(b, "k", Value("1"), null, null, None);
        await Task.Delay(300);

        var purge = await adapter.PurgeExpiredAsync(new PurgeExpiredEntries(), None);

        Assert.Equal((5L, 45L), (purge.Entries, purge.BytesFreed));
        Assert.Equal(0, await Db.HashLengthAsync(keys.Values(a)));
        Assert.Equal(0, await Db.SortedSetLengthAsync(keys.Expiry(a)));
        Assert.Null(await Db.SortedSetScoreAsync(keys.Due(RedisKeys.Bucket(a)), a));
        Assert.Equal((0L, 0L), ((await adapter.UsageAsync(a, None)).UsedBytes, (await adapter.UsageAsync(a, None)).Entries));
        Assert.Equal(1, (long)await Db.StringGetAsync(keys.GlobalBytes));
    }

    [Fact]
    public async Task A_write_that_needs_the_room_of_very_many_expired_entries_reclaims_them_over_several_scripts()
    {
        // No one script removes more than 1,024, so none holds Redis for long whatever a namespace holds.
        var prefix = redis.NewIsolatedPrefix();
        var events = new RecordedEvents();
        await using var adapter = redis.Connect(redis.Options(prefix, namespaceQuotaBytes: 3000), events);
        var ns = NewNamespace();
        foreach (var chunk in Enumerable.Range(0, 3000).Chunk(100))
            await Task.WhenAll(chunk.Select(i => adapter.SetAsync(ns, "k" + i, Value("1"), 0.05, null, None)));
        await Task.Delay(200);

        await adapter.SetAsync(ns, "big", Value($"\"{new string('x', 2498)}\""), null, null, None);

        var expired = events.All<KvEntriesExpired>().Where(e => e.Namespace == ns).ToList();
        Assert.True(expired.Count >= 3, $"{expired.Count} reclaims");
        Assert.All(expired, e => Assert.True(e.Count <= 1024, $"{e.Count} entries in one script"));
        Assert.Equal(2500 + (3000 - expired.Sum(e => e.Count)), (await adapter.UsageAsync(ns, None)).UsedBytes);
        Assert.True(expired.Sum(e => e.Count) >= 2500);
    }

    [Fact]
    public async Task Every_key_of_a_namespace_is_in_one_slot_whatever_braces_the_namespace_holds()
    {
        var prefix = redis.NewIsolatedPrefix();
        await using var adapter = redis.Connect(redis.Options(prefix, namespaceQuotaBytes: 100));
        var ns = "a}b{c}" + Guid.NewGuid().ToString("N");
        await adapter.SetAsync(ns, "k", Value("\"expires\""), 60, "request-1", None);
        await adapter.SetAsync(ns, "{x}", Value("\"" + new string('x', 80) + "\""), null, null, None); // past 0.8: an event

        var written = redis.Connection.GetServers()[0].Keys(pattern: prefix + "*").Select(key => (string)key!).ToList();

        Assert.Contains(new RedisKeys(prefix).Request(ns, "request-1").ToString(), written);
        Assert.True(written.Count >= 6, string.Join(", ", written));
        Assert.Single(written.Select(key => redis.Connection.HashSlot(key)).Distinct());
    }

    [Fact]
    public async Task Events_that_could_not_be_published_go_out_with_the_next_purge()
    {
        var events = new FlakyEvents();
        await using var adapter = redis.Connect(redis.Options(redis.NewIsolatedPrefix(), namespaceQuotaBytes: 100), events);
        var ns = NewNamespace();
        events.Failing = true;

        await adapter.SetAsync(ns, "k", Value("\"" + new string('x', 80) + "\""), null, null, None);
        Assert.Empty(events.Published);

        events.Failing = false;
        await adapter.PurgeExpiredAsync(new PurgeExpiredEntries(), None);
        await adapter.PurgeExpiredAsync(new PurgeExpiredEntries(), None);

        var reached = Assert.IsType<NamespaceQuotaThresholdReached>(Assert.Single(events.Published));
        Assert.Equal((ns, 0.8, 82L), (reached.Namespace, reached.Threshold, reached.UsedBytes));
    }

    [Fact]
    public async Task An_event_of_a_kind_this_replica_does_not_know_stays_in_the_outbox_and_the_others_go_out()
    {
        var events = new FlakyEvents();
        var prefix = redis.NewIsolatedPrefix();
        var keys = new RedisKeys(prefix);
        await using var adapter = redis.Connect(redis.Options(prefix, namespaceQuotaBytes: 100), events);
        var ns = NewNamespace();
        // Queued as a newer replica would queue an event of a kind added after this one was built.
        const string newer = "renamed 1 2 3";
        await Db.ListRightPushAsync(keys.Events(ns), newer);

        await adapter.SetAsync(ns, "k", Value("\"" + new string('x', 80) + "\""), null, null, None); // queues a threshold event behind it
        await adapter.PurgeExpiredAsync(new PurgeExpiredEntries(), None);

        var reached = Assert.IsType<NamespaceQuotaThresholdReached>(Assert.Single(events.Published));
        Assert.Equal(ns, reached.Namespace);
        Assert.Equal([newer], (await Db.ListRangeAsync(keys.Events(ns))).Select(line => (string)line!));
        Assert.Equal(0, await Db.ListLengthAsync(keys.Namespace(ns)[6])); // nothing left claimed
    }

    /// <summary>A broker that refuses events while <see cref="Failing"/>.</summary>
    private sealed class FlakyEvents : IKvEventPublisher
    {
        public bool Failing { get; set; }
        public System.Collections.Concurrent.ConcurrentQueue<object> Published { get; } = new();

        public Task PublishAsync(object @event, CancellationToken cancellationToken)
        {
            if (Failing) throw new InvalidOperationException("the broker is away");
            Published.Enqueue(@event);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task A_request_id_reused_for_another_operation_is_a_key_value_store_error()
    {
        await using var adapter = redis.Connect(redis.Options(redis.NewIsolatedPrefix()));
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("1"), null, "request-1", None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.DeleteAsync(ns, "k", "request-1", None));

        Assert.Equal(Contracts.KvErrorCodes.KeyValueStoreError, error.Code);
        Assert.True((await adapter.GetAsync(ns, "k", None)).Found);
    }

    [Fact]
    public async Task An_unreachable_server_is_reported_as_store_unavailable()
    {
        // Nothing listens on port 1.
        await using var adapter = redis.Connect(new RedisAdapterOptions { Url = "127.0.0.1:1,connectTimeout=200,asyncTimeout=500" });

        var error = await Record.ExceptionAsync(() => adapter.IncrementAsync("ns", "c", 1, 0, null, null, None));

        Assert.IsType<KvStoreUnavailableException>(error);
    }

    [Fact]
    public async Task Connecting_to_a_server_that_does_not_answer_returns_at_once_and_operations_report_it_unavailable_within_their_time()
    {
        // A listener that never accepts completes the TCP handshake and never answers: the client's first
        // connect takes its connect time-out (5 s) for each of its three tries, which no thread waits for.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var url = $"127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}";
        var elapsed = Stopwatch.StartNew();

        var adapter = redis.Connect(new RedisAdapterOptions { Url = url });
        var connected = elapsed.Elapsed;
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var error = await Record.ExceptionAsync(() => adapter.GetAsync("ns", "k", budget.Token));
        var answered = elapsed.Elapsed;
        await adapter.DisposeAsync();
        var disposed = elapsed.Elapsed;

        Assert.True(connected < TimeSpan.FromSeconds(0.5), $"Connect took {connected}");
        Assert.IsType<KvStoreUnavailableException>(error);
        Assert.True(answered < TimeSpan.FromSeconds(2), $"the operation failed after {answered}");
        Assert.True(disposed - answered < TimeSpan.FromSeconds(0.5), $"disposing took {disposed - answered}");
    }

    [Fact]
    public async Task Ping_is_answered_by_a_reachable_server_and_reports_an_unreachable_one_as_store_unavailable()
    {
        await using var reachable = redis.Connect(redis.Options(redis.NewIsolatedPrefix()));
        // Nothing listens on port 1.
        await using var unreachable = redis.Connect(new RedisAdapterOptions { Url = "127.0.0.1:1,connectTimeout=200,asyncTimeout=500" });

        await reachable.PingAsync(None);
        await Assert.ThrowsAsync<KvStoreUnavailableException>(() => unreachable.PingAsync(None));
    }

    [Theory]
    [InlineData("OOM", "--maxmemory", "1", "--maxmemory-policy", "noeviction")] // memory full
    [InlineData("NOREPLICAS", "--min-replicas-to-write", "1")] // no replica in sync (it has none)
    public async Task A_server_that_cannot_serve_for_now_is_reported_unavailable_so_the_worker_retries(string refusal, params string[] arguments)
    {
        // A Redis server of this test's own, in a state that refuses every write.
        await using var server = await OwnServer.StartAsync(arguments);
        var options = redis.Options(redis.NewIsolatedPrefix());
        options.Url = server.Url;
        await using var adapter = redis.Connect(options);

        var error = await Assert.ThrowsAsync<KvStoreUnavailableException>(() => adapter.SetAsync(NewNamespace(), "k", Value("1"), null, null, None));

        Assert.StartsWith($"redis unavailable: {refusal} ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_whose_snapshots_fail_is_reported_unavailable_so_the_worker_retries()
    {
        // With save points and Redis's default stop-writes-on-bgsave-error, a snapshot that cannot be
        // written (a full disk; here its directory is gone) makes the server refuse writes with MISCONF.
        var directory = Directory.CreateTempSubdirectory("kv-redis-");
        await using var server = await OwnServer.StartAsync("--dir", directory.FullName, "--save", "3600 1");
        await using var admin = await ConnectionMultiplexer.ConnectAsync(server.Url + ",allowAdmin=true");
        directory.Delete(recursive: true);
        var snapshots = admin.GetServer(server.Url);
        await snapshots.SaveAsync(SaveType.BackgroundSave);
        for (var waited = 0; (await snapshots.InfoRawAsync("persistence"))?.Contains("rdb_last_bgsave_status:err", StringComparison.Ordinal) != true; waited++)
        {
            Assert.True(waited < 200, "the snapshot has not failed after 10 s");
            await Task.Delay(50);
        }
        var options = redis.Options(redis.NewIsolatedPrefix());
        options.Url = server.Url;
        await using var adapter = redis.Connect(options);
        // Reads are still served. The first of them waits for the connection, which on a busy machine was
        // once not yet usable right after its first connect ("redis unreachable: No connection is active").
        for (var tries = 0; ; tries++)
        {
            try { Assert.False((await adapter.GetAsync(NewNamespace(), "k", None)).Found); break; }
            catch (KvStoreUnavailableException) when (tries < 100) { await Task.Delay(100); }
        }

        var error = await Assert.ThrowsAsync<KvStoreUnavailableException>(() => adapter.SetAsync(NewNamespace(), "k", Value("1"), null, null, None));

        Assert.True(error.Message.StartsWith("redis unavailable: MISCONF ", StringComparison.Ordinal), error.ToString());
    }

    [Fact]
    public async Task A_write_whose_budget_runs_out_while_redis_is_busy_still_settles_the_global_counter()
    {
        // A server of this test's own, kept busy for a second by a script of another client.
        await using var server = await OwnServer.StartAsync();
        var prefix = redis.NewIsolatedPrefix();
        var options = redis.Options(prefix, namespaceQuotaBytes: 10_000, globalQuotaBytes: 1000);
        options.Url = server.Url;
        await using var adapter = redis.Connect(options);
        await using var other = await ConnectionMultiplexer.ConnectAsync(server.Url + ",asyncTimeout=10000");
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value($"\"{new string('x', 598)}\""), null, null, None);
        const string busyForASecond = "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] " +
            "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 1000000 return 1";
        var busy = other.GetDatabase().ScriptEvaluateAsync(busyForASecond);
        await Task.Delay(50);

        using var budget = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var deleted = await adapter.DeleteAsync(ns, "k", null, budget.Token);
        await busy;

        // The script was sent before the budget ran out, so Redis ran it: the delete is answered,
        // and the 600 bytes it freed are off the global counter, where a 600-byte write finds them.
        Assert.True(deleted.Deleted);
        Assert.Equal(0, (long)await other.GetDatabase().StringGetAsync(new RedisKeys(prefix).GlobalBytes));
        await adapter.SetAsync(NewNamespace(), "k", Value($"\"{new string('x', 598)}\""), null, null, None);
    }

    [Fact]
    public async Task A_server_too_slow_to_answer_is_reported_as_a_time_out_which_the_worker_retries()
    {
        // The worker retries TimeoutException like KvStoreUnavailableException (KvRequestPipeline.IsTransient):
        // StackExchange.Redis's own time-out must reach it as one, not as an unexpected fault.
        await using var server = await OwnServer.StartAsync();
        var options = redis.Options(redis.NewIsolatedPrefix());
        options.Url = server.Url + ",asyncTimeout=200";
        await using var adapter = redis.Connect(options);
        await using var other = await ConnectionMultiplexer.ConnectAsync(server.Url + ",asyncTimeout=10000,allowAdmin=true");
        await adapter.GetAsync(NewNamespace(), "k", None);
        // Once answered, the pause holds every client's commands for 3 s, longer than the client takes to notice its time-out.
        await other.GetDatabase().ExecuteAsync("CLIENT", "PAUSE", "3000", "ALL");

        var error = await Record.ExceptionAsync(() => adapter.GetAsync(NewNamespace(), "k", None));

        Assert.IsAssignableFrom<TimeoutException>(error);
    }

    [Fact]
    public async Task A_purge_that_loses_the_server_is_reported_unavailable_so_the_worker_retries()
    {
        // A server of this test's own, stopped while the purge publishes what it removed: the purge's
        // lock, taken before, can then not be released either.
        await using var server = await OwnServer.StartAsync();
        var options = redis.Options(redis.NewIsolatedPrefix());
        options.Url = server.Url;
        await using var adapter = redis.Connect(options, new StopsServerWhenPublishing(server));
        await adapter.SetAsync(NewNamespace(), "k", Value("1"), 0.05, null, None);
        await Task.Delay(200);

        var error = await Record.ExceptionAsync(() => adapter.PurgeExpiredAsync(new PurgeExpiredEntries(), None));

        Assert.IsType<KvStoreUnavailableException>(error);
    }

    /// <summary>A broker during whose first publish the Redis server goes away.</summary>
    private sealed class StopsServerWhenPublishing(OwnServer server) : IKvEventPublisher
    {
        public Task PublishAsync(object @event, CancellationToken cancellationToken) => server.StopAsync();
    }

    /// <summary>A Redis server of a test's own, for states the shared one must not be put in; stopped when disposed.</summary>
    private sealed class OwnServer(System.Diagnostics.Process process, int port) : IAsyncDisposable
    {
        public string Url => $"127.0.0.1:{port}";

        public static async Task<OwnServer> StartAsync(params string[] arguments)
        {
            var port = RedisTestServer.FreePort();
            var start = new System.Diagnostics.ProcessStartInfo("redis-server") { RedirectStandardOutput = true };
            foreach (var argument in new[] { "--port", $"{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" }.Concat(arguments))
                start.ArgumentList.Add(argument);
            var server = new OwnServer(System.Diagnostics.Process.Start(start)!, port);
            await WaitUntilListeningAsync(port);
            return server;
        }

        public async Task StopAsync()
        {
            if (process.HasExited) return;
            process.Kill();
            await process.WaitForExitAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            process.Dispose();
        }

        private static async Task WaitUntilListeningAsync(int port)
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    using var client = new System.Net.Sockets.TcpClient();
                    await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                    return;
                }
                catch (System.Net.Sockets.SocketException) when (attempt < 100)
                {
                    await Task.Delay(50);
                }
            }
        }
    }
}
