using MassTransit;
using MassTransit.Middleware;
using MassTransit.Middleware.Rescue;

namespace KvWorker.Messaging;

/// <summary>
/// A message no consumer took (a MassTransit envelope of another message type)
/// is treated like a body that could not be read: answered once by
/// <see cref="ErrorReplyFilter"/> and moved to <c>&lt;queue&gt;_error</c>, rather
/// than moved silently to <c>&lt;queue&gt;_skipped</c>, which would leave the
/// caller waiting and copy its user_id, which the broker refuses.
/// </summary>
public sealed class NotConsumedFilter(ILogger logger) : IFilter<ReceiveContext>
{
    private readonly IPipe<ExceptionReceiveContext> _errorPipe = Pipe.New<ExceptionReceiveContext>(error =>
    {
        error.UseFilter(new ErrorReplyFilter(logger));
        error.UseFilter(new ErrorTransportFilter());
    });

    public Task Send(ReceiveContext context, IPipe<ReceiveContext> next) =>
        _errorPipe.Send(new RescueExceptionReceiveContext(context,
            new MessageNotConsumedException(context.InputAddress, "no operation on this queue reads the message's type")));

    public void Probe(ProbeContext context) => context.CreateFilterScope("kvNotConsumed");
}
