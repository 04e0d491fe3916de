using KvWorker.Storage;
using Microsoft.Extensions.Configuration;

namespace KvWorker.Configuration;

/// <summary>The worker's part of the <c>tools:kv_store</c> block: the provider, the request budget and the persona policy (limits and adapters have their own options).</summary>
public sealed class KvStoreOptions
{
    public const string Section = "tools:kv_store";

    /// <summary>The provider used when neither the request nor its persona names one.</summary>
    [ConfigurationKeyName("default_adapter")]
    public string DefaultAdapter { get; set; } = "postgres";

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

    /// <summary>
    /// The nodes of a cluster, <c>host:port</c> separated by commas (a node without a port
    /// uses <see cref="Port"/>); when set, <see cref="Host"/> is not used. The worker connects
    /// to one of them and, when that node goes away, to the next.
    /// </summary>
    public string? Hosts { get; set; }

    public string VirtualHost { get; set; } = "/";
    public string Username { get; set; } = "guest";
    public string Password { get; set; } = "guest";
    /// <summary>Messages each replica takes from a queue at once.</summary>
    public ushort PrefetchCount { get; set; } = 64;

    /// <summary>
    /// The operation queues' type. Classic by default, so single-node deployments and their
    /// existing queues keep working; quorum queues are replicated across a cluster's nodes.
    /// RabbitMQ never changes the type of an existing queue.
    /// </summary>
    public RabbitMqQueueType QueueType { get; set; } = RabbitMqQueueType.Classic;

    /// <summary>The nodes to connect to: <see cref="Hosts"/>, else <see cref="Host"/> and <see cref="Port"/>.</summary>
    public IReadOnlyList<(string Host, ushort Port)> Nodes()
    {
        if (string.IsNullOrWhiteSpace(Hosts)) return [(Host, Port)];
        return [.. Hosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseNode)];
    }

    private (string Host, ushort Port) ParseNode(string node)
    {
        var (host, port) = HostPort.Parse(node, Port);
        // MassTransit 8.5 splits a cluster node at every ':', so it cannot take an IPv6 literal.
        if (host.Contains(':')) throw new FormatException($"'{host}' is an IPv6 address, which MassTransit cannot connect to as a node; name the node by DNS name");
        return (host, (ushort)port);
    }

    /// <summary>What is wrong with these settings: none when they are usable.</summary>
    public IEnumerable<string> Validate()
    {
        // MassTransit takes no message at all with a prefetch of 0: the worker would connect and never consume.
        if (PrefetchCount == 0) yield return $"{Section}:PrefetchCount must be at least 1 (messages each replica takes from a queue at once)";
        if (Port == 0) yield return $"{Section}:Port must be a TCP port (1 to 65535)";
        if (HostsProblem() is { } problem) yield return problem;
    }

    private string? HostsProblem()
    {
        if (Hosts is null) return null;
        try
        {
            return Nodes().Count > 0 ? null : $"{Section}:Hosts names no node";
        }
        catch (FormatException ex)
        {
            // The key first, followed by a space, so the message names the setting as it was written (ConfigurationErrors).
            return $"{Section}:Hosts is not a list of nodes (host:port, separated by commas): {ex.Message}";
        }
    }
}

/// <summary>What the operation queues are declared as.</summary>
public enum RabbitMqQueueType
{
    /// <summary>A queue on one node: what single-node deployments have.</summary>
    Classic,

    /// <summary>A replicated queue (Raft) whose leader moves to another node when its node goes away.</summary>
    Quorum,
}
