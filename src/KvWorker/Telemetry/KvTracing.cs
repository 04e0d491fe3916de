using System.Diagnostics;

namespace KvWorker.Telemetry;

/// <summary>
/// The worker's own spans (source <c>KvWorker</c>). Requests are traced by
/// MassTransit; a group commit runs many requests' commands in one database
/// round trip, so it gets a span of its own, linked to each request's span,
/// with Npgsql's database span beneath it.
/// </summary>
public static class KvTracing
{
    public const string SourceName = "KvWorker";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>
    /// A root span for one group of commands, linked to the spans of the requests
    /// they came from. It clears the ambient span of the calling async flow, which
    /// belongs to no single request.
    /// </summary>
    public static Activity? StartGroupCommit(IEnumerable<ActivityContext> requests, int commands)
    {
        Activity.Current = null;
        return Source.StartActivity("kv group commit", ActivityKind.Internal, parentContext: default,
            tags: [new("kv.group.commands", commands)],
            links: requests.Where(context => context != default).Select(context => new ActivityLink(context)));
    }
}
