namespace KvWorker.Messaging;

/// <summary>One durable queue per operation, named like the tool operation.</summary>
public static class KvQueues
{
    public const string Get = "kv_get";
    public const string Set = "kv_set";
    public const string Delete = "kv_delete";
    public const string Increment = "kv_increment";
}
