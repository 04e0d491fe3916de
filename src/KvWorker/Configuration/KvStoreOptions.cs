using Microsoft.Extensions.Configuration;

namespace KvWorker.Configuration;

/// <summary>The <c>tools:kv_store</c> block: the original tool's keys, plus limits and personas.</summary>
public sealed class KvStoreOptions
{
    public const string Section = "tools:kv_store";

    /// <summary>The provider used when neither the request nor its persona names one.</summary>
    [ConfigurationKeyName("default_adapter")]
    public string DefaultAdapter { get; set; } = "postgres";

    [ConfigurationKeyName("adapters")]
    public AdaptersOptions Adapters { get; set; } = new();

    [ConfigurationKeyName("limits")]
    public KvLimitsOptions Limits { get; set; } = new();

    /// <summary>
    /// The longest a request may take, retries of transient storage faults included;
    /// past it the caller gets StoreUnavailableError. A shorter expiry on the message wins.
    /// </summary>
    [ConfigurationKeyName("request_timeout_seconds")]
    public double RequestTimeoutSeconds { get; set; } = 10;

    /// <summary>Per-persona settings, keyed by persona name.</summary>
    [ConfigurationKeyName("personas")]
    public Dictionary<string, PersonaOptions> Personas { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The personas each broker-authenticated caller (RabbitMQ user name) may act as.</summary>
    [ConfigurationKeyName("identities")]
    public Dictionary<string, IdentityOptions> Identities { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The grant for requests that carry no AMQP user_id; null denies them.</summary>
    [ConfigurationKeyName("anonymous")]
    public IdentityOptions? Anonymous { get; set; }
}

public sealed class AdaptersOptions
{
    [ConfigurationKeyName("postgres")]
    public PostgresAdapterOptions Postgres { get; set; } = new();
}

public sealed class PostgresAdapterOptions
{
    public const string Section = KvStoreOptions.Section + ":adapters:postgres";
    public const long DefaultNamespaceQuotaBytes = 1024 * 1024;

    /// <summary><c>postgresql+psycopg://user:pass@host:5432/db</c> or an Npgsql connection string.</summary>
    [ConfigurationKeyName("url")]
    public string? Url { get; set; }

    /// <summary>Use the conversation store's database (<c>ConnectionStrings:conversation_store</c>) when it is configured.</summary>
    [ConfigurationKeyName("reuse_conversation_store")]
    public bool ReuseConversationStore { get; set; } = true;

    [ConfigurationKeyName("namespace_quota_bytes")]
    public long NamespaceQuotaBytes { get; set; } = DefaultNamespaceQuotaBytes;

    /// <summary>Null disables the global limit.</summary>
    [ConfigurationKeyName("global_quota_bytes")]
    public long? GlobalQuotaBytes { get; set; }

    [ConfigurationKeyName("pool")]
    public PoolOptions Pool { get; set; } = new();

    /// <summary>
    /// Fractions of the namespace quota whose crossing publishes NamespaceQuotaThresholdReached;
    /// unset means 0.8 and 1.0.
    /// </summary>
    [ConfigurationKeyName("quota_thresholds")]
    public double[]? QuotaThresholds { get; set; }

    public double[] EffectiveQuotaThresholds => QuotaThresholds ?? [0.8, 1.0];

    /// <summary>Seconds between runs of the expired-entry purge (and the pruning of processed requests).</summary>
    [ConfigurationKeyName("purge_interval_seconds")]
    public double PurgeIntervalSeconds { get; set; } = 60;

    /// <summary>Rows removed per purge transaction, so a large purge never holds one long transaction.</summary>
    [ConfigurationKeyName("purge_batch_size")]
    public int PurgeBatchSize { get; set; } = 1000;

    /// <summary>How long a mutation's request identity is remembered, so retries within it are not applied twice.</summary>
    [ConfigurationKeyName("request_retention_seconds")]
    public double RequestRetentionSeconds { get; set; } = 86400;

    [ConfigurationKeyName("group_commit")]
    public GroupCommitOptions GroupCommit { get; set; } = new();

    /// <summary>How often each worker looks for events waiting in the outbox.</summary>
    [ConfigurationKeyName("outbox_poll_interval_ms")]
    public int OutboxPollIntervalMs { get; set; } = 200;
}

/// <summary>How concurrent commands share transactions.</summary>
public sealed class GroupCommitOptions
{
    /// <summary>Most commands in one transaction.</summary>
    [ConfigurationKeyName("max_commands")]
    public int MaxCommands { get; set; } = 256;

    /// <summary>Transactions in flight at once per worker; while they run, the next group gathers.</summary>
    [ConfigurationKeyName("transactions")]
    public int Transactions { get; set; } = 2;
}

/// <summary>SQLAlchemy's pool settings, mapped onto Npgsql's pool.</summary>
public sealed class PoolOptions
{
    /// <summary>Connections kept open (Npgsql's minimum pool size).</summary>
    [ConfigurationKeyName("size")]
    public int Size { get; set; } = 10;

    /// <summary>Connections allowed beyond <see cref="Size"/> under load.</summary>
    [ConfigurationKeyName("max_overflow")]
    public int MaxOverflow { get; set; } = 20;

    /// <summary>Seconds to wait for a connection before giving up.</summary>
    [ConfigurationKeyName("timeout")]
    public int Timeout { get; set; } = 30;
}

public sealed class KvLimitsOptions
{
    [ConfigurationKeyName("max_namespace_length")]
    public int MaxNamespaceLength { get; set; } = 128;

    [ConfigurationKeyName("max_key_length")]
    public int MaxKeyLength { get; set; } = 512;

    /// <summary>Longest TTL accepted; default one year.</summary>
    [ConfigurationKeyName("max_ttl_seconds")]
    public double MaxTtlSeconds { get; set; } = 365 * 24 * 3600;

    /// <summary>Deepest nesting of arrays and objects in a stored value.</summary>
    [ConfigurationKeyName("max_value_depth")]
    public int MaxValueDepth { get; set; } = 32;

    /// <summary>Longest counter, in decimal digits; increments past it fail with InvalidValueTypeError.</summary>
    [ConfigurationKeyName("max_integer_digits")]
    public int MaxIntegerDigits { get; set; } = 1000;
}

public sealed class PersonaOptions
{
    /// <summary>The provider this persona's requests use unless the request names one.</summary>
    [ConfigurationKeyName("provider")]
    public string? Provider { get; set; }

    /// <summary>Policy flags granted: <c>type.system.kv_store_access</c> to read, <c>type.system.kv_store_write</c> to write.</summary>
    [ConfigurationKeyName("flags")]
    public List<string> Flags { get; set; } = [];

    /// <summary>Namespace patterns (<c>*</c> any run of characters, <c>?</c> one) this persona may use; none means every namespace.</summary>
    [ConfigurationKeyName("namespaces")]
    public List<string> Namespaces { get; set; } = [];
}

public sealed class IdentityOptions
{
    /// <summary>Personas this identity may name in a request.</summary>
    [ConfigurationKeyName("personas")]
    public List<string> Personas { get; set; } = [];

    /// <summary>The persona of a request that names none; null makes naming one mandatory.</summary>
    [ConfigurationKeyName("default_persona")]
    public string? DefaultPersona { get; set; }
}

/// <summary>The worker process (section <c>Worker</c>).</summary>
public sealed class WorkerOptions
{
    public const string Section = "Worker";

    /// <summary>
    /// On SIGTERM: seconds to stop taking messages, let those in hand finish and exit.
    /// Messages not finished in time are returned to the queue unacknowledged.
    /// </summary>
    public double ShutdownTimeoutSeconds { get; set; } = 30;
}

/// <summary>The RabbitMQ connection (section <c>RabbitMq</c>).</summary>
public sealed class RabbitMqOptions
{
    public const string Section = "RabbitMq";

    public string Host { get; set; } = "localhost";
    public ushort Port { get; set; } = 5672;
    public string VirtualHost { get; set; } = "/";
    public string Username { get; set; } = "guest";
    public string Password { get; set; } = "guest";
    /// <summary>Messages each replica takes from a queue at once.</summary>
    public ushort PrefetchCount { get; set; } = 64;
}
