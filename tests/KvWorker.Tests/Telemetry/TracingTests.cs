using System.Collections.Concurrent;
using System.Diagnostics;
using KvWorker.Telemetry;

namespace KvWorker.Tests.Telemetry;

/// <summary>What the OTLP exporter would receive: MassTransit's consume span, the group commit's span linked to it, Npgsql's span beneath that.</summary>
[Collection(WorkerCollection.Name)]
public sealed class TracingTests(WorkerFixture worker)
{
    [Fact]
    public async Task A_request_is_traced_through_the_consumer_and_its_group_commit_to_the_database()
    {
        var ns = "trace-" + Guid.NewGuid().ToString("N");
        var stopped = new ConcurrentQueue<Activity>();
        // Read before the listener is added: the group commit's source comes into being on first use, and
        // created from inside ShouldListenTo (as the listener is being added) it would miss the listener.
        var groupCommits = GroupCommit.Tracing;
        using var listener = new ActivityListener
        {
            // The sources the tracer provider subscribes to when exporting is on.
            ShouldListenTo = source => source.Name is "MassTransit" or "Npgsql" || source == groupCommits,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using var client = await worker.RawClientAsync();

        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "turns" });

        // The consume span ends once the consumer returns, a moment after the reply is out; the group's
        // span ends once the group has handed out its outcomes, which may be after the consume span.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!(stopped.FirstOrDefault(IsConsume) is { } done && stopped.Any(a => IsGroupOf(a, done))) && DateTime.UtcNow < deadline)
            await Task.Delay(50);

        var consume = Assert.Single(stopped, IsConsume);
        Assert.Equal("ok", consume.GetTagItem("kv.outcome"));
        var group = Assert.Single(stopped, a => IsGroupOf(a, consume));
        Assert.Equal(default, group.ParentSpanId); // a root of its own: it serves many requests
        Assert.Contains(stopped, a => a.Source.Name == "Npgsql" && a.TraceId == group.TraceId && a.ParentSpanId == group.SpanId);

        bool IsConsume(Activity activity) => activity.Source.Name == "MassTransit" && Equals(activity.GetTagItem("kv.namespace"), ns);
        bool IsGroupOf(Activity activity, Activity consume) =>
            activity.Source == groupCommits && activity.Links.Any(link => link.Context.TraceId == consume.TraceId);
    }
}
