using System.Text.Json;
using KvWorker.Contracts;

namespace KvWorker.Client;

/// <summary>
/// The worker answered with an error reply, <c>{"error": {"code", "message"}}</c>.
/// Each known code has a subclass named after it (the original tool's exception
/// names, as the Python client has them); this class itself stands for
/// <c>KeyValueStoreError</c> (an invalid request) and for codes this client does not know.
/// </summary>
public class KeyValueStoreException : Exception
{
    /// <summary>An error reply with <paramref name="code"/>; <paramref name="error"/> is the reply's error object.</summary>
    public KeyValueStoreException(string code, string message, JsonElement error) : base(message)
    {
        Code = code;
        Error = error;
    }

    /// <summary>The error code, one of <see cref="KvErrorCodes"/> (or a newer worker's).</summary>
    public string Code { get; }

    /// <summary>The error object exactly as the worker sent it, fields this client does not know included.</summary>
    public JsonElement Error { get; }

    /// <summary>The exception for the error object of an error reply.</summary>
    internal static KeyValueStoreException FromError(JsonElement error)
    {
        var code = Text(error, "code") ?? KvErrorCodes.KeyValueStoreError;
        var message = Text(error, "message") ?? code;
        return code switch
        {
            KvErrorCodes.NamespaceQuotaExceededError => new NamespaceQuotaExceededException(message, error),
            KvErrorCodes.GlobalQuotaExceededError => new GlobalQuotaExceededException(message, error),
            KvErrorCodes.InvalidValueTypeError => new InvalidValueTypeException(message, error),
            KvErrorCodes.ValueSerializationError => new ValueSerializationException(message, error),
            KvErrorCodes.AccessDeniedError => new AccessDeniedException(message, error),
            KvErrorCodes.StoreUnavailableError => new StoreUnavailableException(message, error),
            KvErrorCodes.VersionConflictError => new VersionConflictException(message, error),
            _ => new KeyValueStoreException(code, message, error),
        };
    }

    private static string? Text(JsonElement error, string name) =>
        error.ValueKind == JsonValueKind.Object && error.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}

/// <summary><c>NamespaceQuotaExceededError</c>: the write would push the namespace over its quota; nothing changed.</summary>
public sealed class NamespaceQuotaExceededException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.NamespaceQuotaExceededError, message, error);

/// <summary><c>GlobalQuotaExceededError</c>: the write would push the whole store over its quota; nothing changed.</summary>
public sealed class GlobalQuotaExceededException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.GlobalQuotaExceededError, message, error);

/// <summary><c>InvalidValueTypeError</c>: an increment of a value that is not an integer, or past the digit limit.</summary>
public sealed class InvalidValueTypeException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.InvalidValueTypeError, message, error);

/// <summary><c>ValueSerializationError</c>: a value that cannot be stored as JSON.</summary>
public sealed class ValueSerializationException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.ValueSerializationError, message, error);

/// <summary><c>AccessDeniedError</c>: the persona policy refused the request; nothing changed.</summary>
public sealed class AccessDeniedException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.AccessDeniedError, message, error);

/// <summary><c>StoreUnavailableError</c>: the worker's storage stayed unreachable for the request's time budget.</summary>
public sealed class StoreUnavailableException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.StoreUnavailableError, message, error);

/// <summary><c>VersionConflictError</c>: an <c>if_version</c> that does not match the live entry; nothing changed.</summary>
public sealed class VersionConflictException(string message, JsonElement error)
    : KeyValueStoreException(KvErrorCodes.VersionConflictError, message, error)
{
    /// <summary>The live entry's version; null when the key does not exist.</summary>
    public long? CurrentVersion { get; } =
        error.TryGetProperty("current_version", out var version) && version.TryGetInt64(out var current) ? current : null;
}

/// <summary>
/// No reply within the call's time-out. The request may or may not have been
/// applied; calling again with <see cref="KvCallOptions.MessageId"/> set to
/// <see cref="MessageId"/> finds out without applying it twice.
/// </summary>
public sealed class KvTimeoutException(string queue, string messageId, TimeSpan timeout, string broker)
    : TimeoutException($"no reply on {queue} within {timeout.TotalSeconds:0.###} s: is a worker running against {broker}? " +
                       $"(message_id {messageId}: a retry with it is never applied twice)")
{
    /// <summary>The operation's queue.</summary>
    public string Queue { get; } = queue;

    /// <summary>The request's identity, to retry with.</summary>
    public string MessageId { get; } = messageId;

    /// <summary>How long the call waited.</summary>
    public TimeSpan Timeout { get; } = timeout;
}

/// <summary>
/// A reply that is not what the wire contract says a worker sends: not JSON, JSON null, or JSON
/// that does not have the result's shape. Something other than a KvWorker worker answered on the
/// operation's queue (another consumer, a test responder), or a worker of another version.
/// </summary>
public sealed class KvInvalidReplyException(string queue, string problem, Exception? innerException = null)
    : Exception($"the reply on {queue} {problem}, which no KvWorker worker sends: is another program consuming {queue}?", innerException)
{
    /// <summary>The operation's queue the reply came for.</summary>
    public string Queue { get; } = queue;
}

/// <summary>RabbitMQ could not be used: it refused the virtual host, a property or a publish, or the connection is gone.</summary>
public class KvBrokerException(string message, Exception? innerException = null) : Exception(message, innerException)
{
    /// <summary>
    /// The message_id of a request that was sent before RabbitMQ failed it, so may or may not have
    /// been applied: calling again with <see cref="KvCallOptions.MessageId"/> set to it finds out
    /// without applying it twice. Null when no request was under way.
    /// </summary>
    public string? MessageId { get; init; }
}

/// <summary>No connection to RabbitMQ could be made: connection refused, unknown host, network down, TLS failure.</summary>
public sealed class KvBrokerUnreachableException(string broker, Exception innerException)
    : KvBrokerException($"cannot reach RabbitMQ at {broker}: {innerException.GetBaseException().Message}", innerException);

/// <summary>RabbitMQ was reached but refused the login: wrong user name or password.</summary>
public sealed class KvLoginRefusedException(string broker, string userName, Exception innerException)
    : KvBrokerException($"RabbitMQ at {broker} refused the login of user '{userName}': wrong user name or password?", innerException)
{
    /// <summary>The user name that was refused.</summary>
    public string UserName { get; } = userName;
}

/// <summary>
/// A request was published to a queue nobody has declared, so RabbitMQ returned it at
/// once: no worker has ever run against this broker and virtual host, or the name is wrong.
/// </summary>
public sealed class KvQueueNotFoundException(string queue, string broker)
    : KvBrokerException($"there is no queue {queue} on {broker}: is a worker running against this broker and virtual host?")
{
    /// <summary>The queue the request was addressed to.</summary>
    public string Queue { get; } = queue;
}
