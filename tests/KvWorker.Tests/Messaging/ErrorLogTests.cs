using System.Text.Json;
using KvWorker.Messaging;
using Serilog.Events;
using Serilog.Parsing;

namespace KvWorker.Tests.Messaging;

public sealed class ErrorLogTests
{
    private static LogEvent Event(string template, Exception exception) =>
        new(DateTimeOffset.UtcNow, LogEventLevel.Error, exception, new MessageTemplateParser().Parse(template), []);

    private const string ReceiveFault = "R-FAULT {InputAddress} {MessageId} {Duration}";
    private const string ConsumerFault = "R-FAULT {InputAddress} {MessageId} {MessageType} {ConsumerType}({Duration})";

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
