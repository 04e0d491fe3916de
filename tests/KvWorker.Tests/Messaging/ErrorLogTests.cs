using KvWorker.Amqp;
using Serilog.Events;
using Serilog.Parsing;

namespace KvWorker.Tests.Messaging;

public sealed class ErrorLogTests
{
    /// <summary>An error log entry as MassTransit writes one, with these properties.</summary>
    private static LogEvent Event(string[] properties, Exception exception) =>
        new(DateTimeOffset.UtcNow, LogEventLevel.Error, exception, new MessageTemplateParser().Parse("R-FAULT"),
            properties.Select(name => new LogEventProperty(name, new ScalarValue("x"))));

    private static readonly string[] ReceiveFault = ["InputAddress", "MessageId", "Duration"];
    private static readonly string[] ConsumerFault = ["InputAddress", "MessageId", "MessageType", "ConsumerType", "Duration"];

    [Fact]
    public void Only_the_receive_fault_of_an_unreadable_body_is_dropped()
    {
        var unreadable = new System.Runtime.Serialization.SerializationException("envelope", new JsonException("'x' is an invalid start of a value"));

        Assert.True(ErrorReplyFilter.IsMalformedRequestFault(Event(ReceiveFault, unreadable)));
        Assert.True(ErrorReplyFilter.IsMalformedRequestFault(Event(ReceiveFault, new JsonException("wrong type"))));
        Assert.False(ErrorReplyFilter.IsMalformedRequestFault(Event(ConsumerFault, new JsonException("from inside a consumer"))));
        Assert.False(ErrorReplyFilter.IsMalformedRequestFault(Event(ReceiveFault, new InvalidOperationException("a real fault"))));
    }
}
