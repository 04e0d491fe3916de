using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>A request that broke a rule of the store; <see cref="Code"/> is one of <see cref="KvErrorCodes"/>.</summary>
public class KvStoreException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;

    public virtual KvError ToReply() => new() { Error = new KvErrorDetail { Code = Code, Message = Message } };

    public static KvStoreException InvalidRequest(string message) => new(KvErrorCodes.KeyValueStoreError, message);

    /// <summary>A message_id already used for a different request (another operation, key or arguments).</summary>
    public static KvStoreException IdentityReused(string? messageId) => new(KvErrorCodes.KeyValueStoreError,
        $"message_id '{messageId}' was already used for a different request; send each request with a message_id of its own");

    /// <summary>An increment of a live value that is not a JSON integer.</summary>
    public static KvStoreException NotAnInteger(string ns, string key) => new(KvErrorCodes.InvalidValueTypeError,
        $"value of '{key}' in namespace '{ns}' is not an integer and cannot be incremented");

    /// <summary>An increment whose result would be longer than <c>limits:max_integer_digits</c>.</summary>
    public static KvStoreException TooManyDigits(string ns, string key, int maxDigits) => new(KvErrorCodes.InvalidValueTypeError,
        $"incrementing '{key}' in namespace '{ns}' would exceed {maxDigits} digits");
}

/// <summary>An <c>if_version</c> that did not match: nothing was changed; the reply tells the version there is.</summary>
public sealed class VersionConflictException(string ns, string key, long expectedVersion, long? currentVersion)
    : KvStoreException(KvErrorCodes.VersionConflictError,
        $"'{key}' in namespace '{ns}' " + (currentVersion is { } current ? $"has version {current}" : "does not exist")
        + (expectedVersion == 0 ? ", but if_version 0 asks for it to be absent" : $", not the if_version {expectedVersion} asked for"))
{
    /// <summary>The live entry's version; null when the key is absent or expired.</summary>
    public long? CurrentVersion { get; } = currentVersion;

    public override KvError ToReply() => new()
    {
        Error = new KvErrorDetail { Code = Code, Message = Message, CurrentVersion = CurrentVersion },
    };
}

/// <summary>A write rejected by the namespace or global quota, with the figures subscribers are told.</summary>
public sealed class QuotaExceededException(string code, string message, long quotaBytes, long usedBytes, long attemptedBytes)
    : KvStoreException(code, message)
{
    public long QuotaBytes { get; } = quotaBytes;
    public long UsedBytes { get; } = usedBytes;
    public long AttemptedBytes { get; } = attemptedBytes;

    /// <summary>The NamespaceQuotaExceeded or GlobalQuotaExceeded event that reports this rejection.</summary>
    public object ToEvent(string ns, string key, string? persona, DateTimeOffset at) => Code == KvErrorCodes.GlobalQuotaExceededError
        ? new GlobalQuotaExceeded
        {
            Namespace = ns, Key = key, QuotaBytes = QuotaBytes, UsedBytes = UsedBytes, AttemptedBytes = AttemptedBytes,
            Persona = persona, At = at,
        }
        : new NamespaceQuotaExceeded
        {
            Namespace = ns, Key = key, QuotaBytes = QuotaBytes, UsedBytes = UsedBytes, AttemptedBytes = AttemptedBytes,
            Persona = persona, At = at,
        };

    public static QuotaExceededException Namespace(string ns, long quota, long used, long attempted) => new(
        KvErrorCodes.NamespaceQuotaExceededError,
        $"namespace '{ns}' quota of {quota} bytes exceeded: {used} bytes used, write needs {attempted} bytes",
        quota, used, attempted);

    public static QuotaExceededException Global(long quota, long used, long attempted) => new(
        KvErrorCodes.GlobalQuotaExceededError,
        $"global quota of {quota} bytes exceeded: {used} bytes used, write needs {attempted} bytes",
        quota, used, attempted);
}

/// <summary>
/// The adapter's storage could not be reached (a lost or refused connection).
/// The worker retries the operation and then answers <c>StoreUnavailableError</c>;
/// adapters wrap their client's connection failures in it.
/// </summary>
public sealed class KvStoreUnavailableException(string message, Exception innerException) : Exception(message, innerException);
