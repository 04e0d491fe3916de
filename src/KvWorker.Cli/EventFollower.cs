using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using KvWorker.Contracts;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace KvWorker.Cli;

/// <summary>
/// <c>kv events</c>: binds an exclusive queue to each event exchange and prints
/// events as they arrive. The exchanges are declared exactly as the worker
/// declares them (fanout, durable, no arguments), so either may come first.
/// </summary>
public static class EventFollower
{
    private static IReadOnlyList<string> Exchanges => KvEvents.Exchanges;

    public static Command Command()
    {
        var json = new Option<bool>("--json") { Description = "Print each event as one line of JSON, {\"event\": ..., \"data\": {...}}, for scripts" };
        var count = KvCommands.ParsedOption<int?>(
            "--count", "Stop after this many events (default: follow until Ctrl+C)", "a positive number of events",
            (string text, out int? events) => (events = int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number) ? number : null) > 0);
        var command = new Command("events", $"Follow the worker's events live: {string.Join(", ", Exchanges)}") { Options = { json, count } };
        command.SetAction((parse, cancellationToken) => KvCommands.RunAsync(() =>
            FollowAsync(parse, KvCommands.EventsAsJson(parse) || parse.GetValue(json), parse.GetValue(count), cancellationToken)));
        return command;
    }

    private static async Task<int> FollowAsync(ParseResult parse, bool asJson, int? limit, CancellationToken cancellationToken)
    {
        await using var client = await KvCommands.ConnectAsync(parse, cancellationToken);
        await using var channel = await client.Connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true,
            cancellationToken: cancellationToken)).QueueName;
        foreach (var exchange in Exchanges)
        {
            await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false,
                arguments: null, cancellationToken: cancellationToken);
            await channel.QueueBindAsync(queue, exchange, "", cancellationToken: cancellationToken);
        }

        var received = 0;
        var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            // Deliveries already on their way when the last one counted are not printed.
            if (received == limit) return Task.CompletedTask;
            Console.WriteLine(asJson ? JsonLine(delivery.Exchange, delivery.Body) : HumanLine(delivery.Exchange, delivery.Body));
            if (++received == limit) enough.TrySetResult();
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue, autoAck: true, consumer, cancellationToken);
        var until = limit is { } events ? $"until {events} {(events == 1 ? "event has" : "events have")} arrived" : "(Ctrl+C to stop)";
        await Console.Error.WriteLineAsync($"following {string.Join(", ", Exchanges)} on {client.Broker} {until}");

        try
        {
            await enough.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C is how following ends.
        }
        return ExitCodes.Ok;
    }

    /// <summary><c>{"event": "NamespaceQuotaExceeded", "data": {...}}</c>; a body that is not JSON is kept as a string.</summary>
    private static string JsonLine(string exchange, ReadOnlyMemory<byte> body)
    {
        var data = TryParse(body) ?? JsonSerializer.SerializeToElement(Encoding.UTF8.GetString(body.Span));
        var line = JsonSerializer.SerializeToElement(new Dictionary<string, object> { ["event"] = exchange, ["data"] = data });
        return Json.Format(line, indented: false);
    }

    /// <summary><c>NamespaceQuotaExceeded namespace=researcher key=plan quota_bytes=1024 ...</c></summary>
    private static string HumanLine(string exchange, ReadOnlyMemory<byte> body)
    {
        if (TryParse(body) is not { ValueKind: JsonValueKind.Object } data)
            return $"{exchange} {Encoding.UTF8.GetString(body.Span)}";
        var fields = data.EnumerateObject().Select(field => field.Value.ValueKind switch
        {
            JsonValueKind.String => $"{field.Name}={Word(field.Value)}",
            JsonValueKind.Null => $"{field.Name}=-",
            _ => $"{field.Name}={Json.Format(field.Value, indented: false)}",
        });
        return $"{exchange} {string.Join(' ', fields)}";
    }

    /// <summary>
    /// A string as it is when it reads as one word, else in JSON quotes (as logfmt does), so that a
    /// key with a space or an empty persona cannot be mistaken for other fields or for a null (-).
    /// </summary>
    private static string Word(JsonElement text)
    {
        var value = text.GetString()!;
        var plain = value.Length > 0 && value != "-" && value.All(c => !char.IsWhiteSpace(c) && !char.IsControl(c) && c is not ('"' or '='));
        return plain ? value : Json.Format(text, indented: false);
    }

    private static JsonElement? TryParse(ReadOnlyMemory<byte> body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
