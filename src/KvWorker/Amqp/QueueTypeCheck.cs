using System.Text.RegularExpressions;
using KvWorker.Configuration;
using MassTransit;
using Microsoft.Extensions.Options;

namespace KvWorker.Amqp;

/// <summary>
/// Ends the worker (exit code 2, one line naming the setting) when RabbitMQ refuses an
/// operation queue because it exists with another type than <c>RabbitMq:QueueType</c>:
/// RabbitMQ never changes a queue's type, so retrying cannot help, and without this the
/// worker would retry forever without consuming that queue.
/// </summary>
public sealed partial class QueueTypeCheck(
    IOptions<RabbitMqOptions> options, IConfiguration configuration, IHostApplicationLifetime lifetime) : IReceiveEndpointObserver
{
    private int _reported;

    public Task Faulted(ReceiveEndpointFaulted faulted)
    {
        for (var ex = faulted.Exception; ex is not null; ex = ex.InnerException)
        {
            if (InequivalentQueueType().Match(ex.Message) is not { Success: true } match) continue;
            if (Interlocked.Exchange(ref _reported, 1) == 1) break;
            var setting = ConfigurationErrors.AsWritten($"{RabbitMqOptions.Section}:{nameof(RabbitMqOptions.QueueType)}", configuration);
            Console.Error.WriteLine($"Invalid configuration:\n  {setting} is {options.Value.QueueType.ToString().ToLowerInvariant()}, " +
                $"but queue {match.Groups["queue"].Value} exists with another type and RabbitMQ cannot change it: drain and delete " +
                "the operation queues (and their _error queues), or use a new virtual host");
            Environment.ExitCode = 2;
            lifetime.StopApplication();
            break;
        }
        return Task.CompletedTask;
    }

    public Task Ready(ReceiveEndpointReady ready) => Task.CompletedTask;

    public Task Stopping(ReceiveEndpointStopping stopping) => Task.CompletedTask;

    public Task Completed(ReceiveEndpointCompleted completed) => Task.CompletedTask;

    [GeneratedRegex("inequivalent arg 'x-queue-type' for queue '(?<queue>[^']+)'")]
    private static partial Regex InequivalentQueueType();
}
