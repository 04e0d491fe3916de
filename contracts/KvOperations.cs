using System.Text.Json;

namespace KvWorker.Contracts;

/// <summary>
/// One operation of the store: its queue (named like the operation), its request
/// and result records, and the policy flag it needs. Everything that has to know
/// "which operation is this" (endpoints, persona policy, metrics, the manifest
/// check, the clients, the benchmark's echo service, the tests) reads these.
/// </summary>
public abstract record KvOperation(string Name, Type RequestType, Type ResultType, string RequiredFlag)
{
    /// <summary>The durable queue the operation is consumed from: its name.</summary>
    public string Queue => Name;

    /// <summary>Whether the operation changes the store (and so needs the write flag).</summary>
    public bool Writes => RequiredFlag == KvStoreManifest.WriteFlag;

    /// <summary>The operation's tool definition in <c>kv_store.manifest.json</c>; null for operator queries, which are not tools.</summary>
    public JsonElement? Tool => KvStoreManifest.Tool(Name);

    public override string ToString() => Name;
}

/// <inheritdoc cref="KvOperation"/>
public sealed record KvOperation<TRequest, TResult>(string Name, string RequiredFlag)
    : KvOperation(Name, typeof(TRequest), typeof(TResult), RequiredFlag)
    where TRequest : class, IKvRequest
    where TResult : class;

/// <summary>The operations, each described once.</summary>
public static class KvOperations
{
    public static readonly KvOperation<KvGet, KvGetResult> Get = new("kv_get", KvStoreManifest.ReadFlag);
    public static readonly KvOperation<KvSet, KvSetResult> Set = new("kv_set", KvStoreManifest.WriteFlag);
    public static readonly KvOperation<KvDelete, KvDeleteResult> Delete = new("kv_delete", KvStoreManifest.WriteFlag);
    public static readonly KvOperation<KvIncrement, KvIncrementResult> Increment = new("kv_increment", KvStoreManifest.WriteFlag);
    public static readonly KvOperation<KvList, KvListResult> List = new("kv_list", KvStoreManifest.ReadFlag);
    public static readonly KvOperation<KvTouch, KvTouchResult> Touch = new("kv_touch", KvStoreManifest.WriteFlag);
    public static readonly KvOperation<KvGetMany, KvGetManyResult> GetMany = new("kv_get_many", KvStoreManifest.ReadFlag);

    /// <summary>Operator query, not a tool: what a namespace holds against its quota.</summary>
    public static readonly KvOperation<KvUsage, KvUsageResult> Usage = new("kv_usage", KvStoreManifest.ReadFlag);

    /// <summary>Operator command, not a tool: remove expired entries now (also sent once per interval by the worker).</summary>
    public static readonly KvOperation<PurgeExpiredEntries, KvPurgeResult> Purge = new("kv_purge", KvStoreManifest.WriteFlag);

    public static IReadOnlyList<KvOperation> All { get; } = [Get, Set, Delete, Increment, List, Touch, GetMany, Usage, Purge];

    private static readonly Dictionary<Type, KvOperation> ByRequestType = All.ToDictionary(operation => operation.RequestType);

    /// <summary>The operation whose request record is <paramref name="requestType"/>.</summary>
    public static KvOperation ForRequest(Type requestType) => ByRequestType.TryGetValue(requestType, out var operation)
        ? operation
        : throw new ArgumentException($"{requestType.Name} is the request of no operation", nameof(requestType));
}

/// <summary>
/// How deep the JSON of the wire contract may nest, for every program that reads or writes it
/// (System.Text.Json stops at 64 levels unless told otherwise).
/// </summary>
public static class KvJsonDepth
{
    /// <summary>The highest a worker's <c>limits:max_value_depth</c> may be set to: the deepest value.</summary>
    public const int MaxValue = 256;

    /// <summary>
    /// A request or reply: the deepest value plus the message's own levels around it (a kv_get_many
    /// reply holds its values three levels down, a MassTransit envelope adds two).
    /// </summary>
    public const int MaxMessage = MaxValue + 16;
}

/// <summary>AMQP headers of the wire contract.</summary>
public static class KvHeaders
{
    /// <summary>
    /// When the caller stops waiting for the reply, in Unix milliseconds (UTC). A request
    /// taken after it is dropped unapplied and unanswered. Send it beside the AMQP
    /// <c>expiration</c> (the same time-out, in milliseconds), which makes RabbitMQ drop a
    /// request still queued by then.
    /// </summary>
    public const string Deadline = "kv-deadline";
}
