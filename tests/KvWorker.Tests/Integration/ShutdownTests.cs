
namespace KvWorker.Tests.Integration;

/// <summary>Replicas stopping and dying under load, against a broker and database of their own.</summary>
public sealed class ShutdownTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Worker:ShutdownTimeoutSeconds"] = "20",
        ["RabbitMq:PrefetchCount"] = "32",
    };

    private async Task<WorkerProcess> StartReplicaAsync(int expectedConsumers)
    {
        var replica = broker.StartWorkerProcess(Settings);
        await broker.WaitForConsumersAsync(KvOperations.Increment.Queue, expectedConsumers, TimeSpan.FromSeconds(60));
        return replica;
    }

    /// <summary>
    /// Sends <paramref name="count"/> increments of one counter at once; runs
    /// <paramref name="disrupt"/> once a third have been answered; returns every reply's
    /// value, and the replies that arrived for requests already answered.
    /// </summary>
    private async Task<(long[] Values, string[] Duplicates)> IncrementUnderDisruptionAsync(string ns, int count, Func<Task> disrupt)
    {
        await using var client = await broker.RawClientAsync();
        var answered = 0;
        var calls = Enumerable.Range(0, count).Select(async _ =>
        {
            var reply = await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "c" }, timeout: TimeSpan.FromSeconds(90));
            Interlocked.Increment(ref answered);
            Assert.True(reply.TryGetProperty("value", out var value), reply.GetRawText());
            return value.GetInt64();
        }).ToList();
        while (Volatile.Read(ref answered) < count / 3) await Task.Delay(10);
        await disrupt();
        var values = await Task.WhenAll(calls);
        return (values, client.Unmatched.ToArray());
    }

    [Fact]
    public async Task A_replica_stopped_with_sigterm_mid_load_exits_cleanly_and_no_increment_is_lost_or_doubled()
    {
        var ns = "ns-" + Guid.NewGuid().ToString("N");
        var first = await StartReplicaAsync(1);
        WorkerProcess? second = null;

        var (values, duplicates) = await IncrementUnderDisruptionAsync(ns, 1500, async () =>
        {
            first.Terminate();
            second = await StartReplicaAsync(1);
        });

        await first.WaitForExitAsync(TimeSpan.FromSeconds(25));
        Assert.True(first.ExitCode == 0, $"exit code {first.ExitCode}\n{first.Output}");
        // Each increment answered exactly once, with every value from 1 to 1500 once.
        Assert.Equal(Enumerable.Range(1, 1500).Select(v => (long)v), values.Order());
        Assert.Empty(duplicates);
        second!.Terminate();
        await second.WaitForExitAsync(TimeSpan.FromSeconds(25));
    }

    [Fact]
    public async Task A_replica_killed_mid_load_loses_nothing_its_messages_go_to_another_and_apply_once()
    {
        var ns = "ns-" + Guid.NewGuid().ToString("N");
        var doomed = await StartReplicaAsync(1);
        var survivor = await StartReplicaAsync(2);

        var (values, duplicates) = await IncrementUnderDisruptionAsync(ns, 1500, () =>
        {
            doomed.Kill();
            return Task.CompletedTask;
        });

        // Messages the killed replica had committed but not acknowledged come back;
        // their message_id makes the survivor answer them without applying them again.
        Assert.Equal(Enumerable.Range(1, 1500).Select(v => (long)v), values.Order());
        // A request answered just before the kill may be answered again: with the same reply.
        Assert.All(duplicates, body => Assert.Contains(
            System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("value").GetInt64(), values));
        survivor.Terminate();
        await survivor.WaitForExitAsync(TimeSpan.FromSeconds(25));
    }
}
