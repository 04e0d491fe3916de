using RabbitMQ.Client;

namespace KvWorker.Tests.Infrastructure;

/// <summary>Reads the message a test expects on a queue of its own.</summary>
public static class QueueReader
{
    /// <summary>The next message on <paramref name="queue"/>, polled for up to <paramref name="within"/>; a <see cref="TimeoutException"/> when none came.</summary>
    public static async Task<BasicGetResult> NextAsync(IChannel channel, string queue, TimeSpan within)
    {
        for (var deadline = DateTime.UtcNow + within; DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            if (await channel.BasicGetAsync(queue, autoAck: true) is { } message) return message;
        }
        throw new TimeoutException($"no message on {queue} within {within.TotalSeconds:0.#} s");
    }
}
