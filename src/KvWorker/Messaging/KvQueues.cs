namespace KvWorker.Messaging;

/// <summary>One durable queue per operation, named like the tool operation.</summary>
public static class KvQueues
{
    public const string Get = "kv_get";
    public const string Set = "kv_set";
    public const string Delete = "kv_delete";
    public const string Increment = "kv_increment";

    /// <summary>Not a tool operation: what a namespace holds against its quota, for operators and the CLI.</summary>
    public const string Usage = "kv_usage";
}
