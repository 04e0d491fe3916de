using KvWorker.Storage;
using Microsoft.Extensions.Configuration;

namespace KvWorker.Postgres;

/// <summary>The <c>tools:kv_store:adapters:postgres</c> block: the original tool's keys, plus the purge, outbox and group commit.</summary>
public sealed class PostgresAdapterOptions
{
    public const string Section = "tools:kv_store:adapters:postgres";
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

    /// <summary>
    /// Seconds between purges of expired entries (and of request identities past their
    /// retention), for the whole deployment: one replica sends the purge command per interval.
    /// </summary>
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

    /// <summary>
    /// How long a batch of events may wait for the broker. The batch's transaction stays open while
    /// it is published, and a publish waits as long as the broker is unreachable: past this time the
    /// batch rolls back (its rows stay, to be published again), so an outage of the broker holds no
    /// transaction, locks or vacuum horizon longer than this.
    /// </summary>
    [ConfigurationKeyName("outbox_publish_timeout_seconds")]
    public double OutboxPublishTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// Acknowledge a write only once PostgreSQL has waited for a synchronous standby to keep it:
    /// a group of writes is refused as unavailable storage (and retried) when the server does not
    /// replicate synchronously (<c>synchronous_standby_names</c> empty, or <c>synchronous_commit</c>
    /// <c>local</c> or <c>off</c>), checked before it writes and again after it commits. Off by
    /// default, as a single server never replicates. With a failover manager that turns synchronous
    /// replication off while a standby is away (pg_auto_failover's <c>wait_primary</c>, Patroni without
    /// <c>synchronous_mode_strict</c>), writes wait for the standby instead of risking their loss in
    /// the next failover.
    /// </summary>
    [ConfigurationKeyName("require_synchronous_replication")]
    public bool RequireSynchronousReplication { get; set; }

    /// <summary>Every failure as "key message", the key in full.</summary>
    public IEnumerable<string> Validate()
    {
        var failures = new List<string>();
        void Require(bool ok, string key, string message)
        {
            if (!ok) failures.Add($"{Section}:{key} {message}");
        }
        Require(NamespaceQuotaBytes > 0, "namespace_quota_bytes", "must be a positive number of bytes");
        Require(GlobalQuotaBytes is null or > 0, "global_quota_bytes", "must be a positive number of bytes, or unset for no global limit");
        Require(Pool.Size > 0, "pool:size", "must be positive");
        Require(Pool.MaxOverflow >= 0, "pool:max_overflow", "must be zero or more");
        Require(Pool.Timeout is > 0 and <= PoolOptions.MaxTimeoutSeconds, "pool:timeout", $"must be a positive number of seconds, at most {PoolOptions.MaxTimeoutSeconds}");
        Require(EffectiveQuotaThresholds.All(t => t is > 0 and <= 1), "quota_thresholds", "must be fractions of the quota, each above 0 and at most 1");
        // Bounded as a timer's period must be; a day at most, as request identities are kept a day by default.
        Require(PurgeIntervalSeconds is > 0 and <= 86400, "purge_interval_seconds", "must be a positive number of seconds, at most 86400");
        Require(PurgeBatchSize is > 0 and <= 100_000, "purge_batch_size", "must be between 1 and 100000");
        Require(RequestRetentionSeconds is > 0 and <= KvLimits.MaxConfigurableSeconds,
            "request_retention_seconds", "must be a positive number of seconds, at most 3153600000 (100 years)");
        Require(GroupCommit.MaxCommands is > 0 and <= 10_000, "group_commit:max_commands", "must be between 1 and 10000");
        Require(GroupCommit.Transactions > 0, "group_commit:transactions", "must be at least 1");
        Require(GroupCommit.ReadTransactions >= 0, "group_commit:read_transactions", "must be zero or more");
        Require(GroupCommit.Transactions + GroupCommit.ReadTransactions < Pool.Size + Pool.MaxOverflow,
            "group_commit:transactions", "and group_commit:read_transactions together must be less than the pool's size + max_overflow");
        Require(OutboxPollIntervalMs > 0, "outbox_poll_interval_ms", "must be a positive number of milliseconds");
        Require(OutboxPublishTimeoutSeconds is > 0 and <= 3600, "outbox_publish_timeout_seconds", "must be a positive number of seconds, at most 3600");
        return failures;
    }
}

/// <summary>How concurrent commands share transactions.</summary>
public sealed class GroupCommitOptions
{
    /// <summary>Most commands in one transaction.</summary>
    [ConfigurationKeyName("max_commands")]
    public int MaxCommands { get; set; } = 256;

    /// <summary>
    /// Transactions of mutations in flight at once per worker; while they run, the next group gathers.
    /// One by default: measured side by side, a second one cost PostgreSQL more CPU per mutation
    /// for no better rate (docs/experiments/group-commit-transactions.md).
    /// </summary>
    [ConfigurationKeyName("transactions")]
    public int Transactions { get; set; } = 1;

    /// <summary>
    /// Groups of gets in flight at once per worker, beside the mutations' transactions: gets take no
    /// locks, so they need not wait for a write group. One by default: measured side by side, a second
    /// one made groups smaller, cost PostgreSQL more CPU per get and lowered the rate
    /// (docs/experiments/group-commit-read-transactions.md). Zero puts gets in the mutations' groups,
    /// where a get sees the writes ahead of it in its group.
    /// </summary>
    [ConfigurationKeyName("read_transactions")]
    public int ReadTransactions { get; set; } = 1;
}

/// <summary>SQLAlchemy's pool settings, mapped onto Npgsql's pool.</summary>
public sealed class PoolOptions
{
    /// <summary>The longest connection wait Npgsql takes.</summary>
    public const int MaxTimeoutSeconds = 1024;

    /// <summary>Connections kept open (Npgsql's minimum pool size).</summary>
    [ConfigurationKeyName("size")]
    public int Size { get; set; } = 10;

    /// <summary>Connections allowed beyond <see cref="Size"/> under load.</summary>
    [ConfigurationKeyName("max_overflow")]
    public int MaxOverflow { get; set; } = 20;

    /// <summary>Seconds to wait for a connection before giving up; a fraction, as SQLAlchemy takes, rounds up to Npgsql's whole seconds.</summary>
    [ConfigurationKeyName("timeout")]
    public double Timeout { get; set; } = 30;
}
