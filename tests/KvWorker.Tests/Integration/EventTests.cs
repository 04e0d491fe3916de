
namespace KvWorker.Tests.Integration;

/// <summary>What a plain AMQP subscriber sees while two replicas serve requests and purge.</summary>
[Collection(TwoReplicasCollection.Name)]
public sealed class EventTests(TwoReplicasFixture replicas)
{
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(30);
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");

    /// <summary>A JSON string of exactly <paramref name="bytes"/> bytes once serialised.</summary>
    private static string Text(int bytes) => new('x', bytes - 2);

    /// <summary>
    /// "at" in UTC with exactly six fraction digits: what Python 3.10's datetime.fromisoformat
    /// reads (three or six), where System.Text.Json alone writes one to seven.
    /// </summary>
    private static void AssertEventTime(JsonElement e) =>
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$", e.GetProperty("at").GetString());

    [Fact]
    public async Task A_burst_of_ttl_entries_is_purged_once_and_reported_with_exact_figures()
    {
        var ns = NewNamespace();
        await using var client = await replicas.RawClientAsync();
        await Task.WhenAll(Enumerable.Range(0, 60).Select(i =>
            client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = $"k{i}", value = Text(10), ttl_seconds = 0.5 })));

        long Purged() => replicas.Events.Events("KvEntriesExpired", ns).Sum(e => e.GetProperty("count").GetInt64());
        await replicas.Events.WaitUntilAsync(() => Purged() >= 60, EventTimeout, "60 purged entries");
        await Task.Delay(TimeSpan.FromSeconds(2)); // more purge rounds on both replicas: nothing more to report

        var events = replicas.Events.Events("KvEntriesExpired", ns);
        Assert.Equal(60, Purged());
        Assert.Equal(600, events.Sum(e => e.GetProperty("bytes_freed").GetInt64()));
        Assert.All(events, AssertEventTime);
        var usage = await client.CallAsync(KvOperations.Usage.Queue, new { @namespace = ns });
        Assert.Equal(0, usage.GetProperty("used_bytes").GetInt64());
        Assert.Equal(0, usage.GetProperty("entries").GetInt64());
    }

    [Fact]
    public async Task Every_write_rejected_for_quota_publishes_exactly_one_event_with_its_figures()
    {
        var ns = NewNamespace();
        await using var client = await replicas.RawClientAsync();
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "big", value = Text(900) });

        for (var i = 0; i < 5; i++)
        {
            var reply = await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = $"k{i}", value = Text(200), persona = BrokerFixture.TestPersona });
            Assert.Equal("NamespaceQuotaExceededError", reply.GetProperty("error").GetProperty("code").GetString());
        }

        await replicas.Events.WaitUntilAsync(() => replicas.Events.Events("NamespaceQuotaExceeded", ns).Count >= 5, EventTimeout, "5 quota events");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var events = replicas.Events.Events("NamespaceQuotaExceeded", ns);
        Assert.Equal(5, events.Count);
        Assert.Equal(["k0", "k1", "k2", "k3", "k4"], events.Select(e => e.GetProperty("key").GetString()).Order());
        Assert.All(events, e =>
        {
            Assert.Equal(TwoReplicasFixture.NamespaceQuotaBytes, e.GetProperty("quota_bytes").GetInt64());
            Assert.Equal(900, e.GetProperty("used_bytes").GetInt64());
            Assert.Equal(200, e.GetProperty("attempted_bytes").GetInt64());
            Assert.Equal(BrokerFixture.TestPersona, e.GetProperty("persona").GetString());
            Assert.True(e.GetProperty("at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-5));
            AssertEventTime(e);
        });
    }

    [Fact]
    public async Task Threshold_events_are_published_once_per_crossing_across_two_replicas()
    {
        var ns = NewNamespace();
        // 16 clients race 160 writes of 10 bytes into a 1000-byte quota.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(writer => Task.Run(async () =>
        {
            await using var client = await replicas.RawClientAsync();
            await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
                client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = $"w{writer}-{i}", value = Text(10) })));
        })));

        List<JsonElement> Thresholds() => replicas.Events.Events("NamespaceQuotaThresholdReached", ns);
        await replicas.Events.WaitUntilAsync(() => Thresholds().Count >= 2, EventTimeout, "two threshold events");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal([0.8, 1.0], Thresholds().Select(e => e.GetProperty("threshold").GetDouble()).Order());
        Assert.All(Thresholds(), AssertEventTime);
        Assert.Equal(160 - 100, replicas.Events.Events("NamespaceQuotaExceeded", ns).Count);
    }
}
