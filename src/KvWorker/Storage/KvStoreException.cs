using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>A request that broke a rule of the store; <see cref="Code"/> is one of <see cref="KvErrorCodes"/>.</summary>
public class KvStoreException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;

    public KvError ToReply() => new() { Error = new KvErrorDetail { Code = Code, Message = Message } };

    public static KvStoreException InvalidRequest(string message) => new(KvErrorCodes.KeyValueStoreError, message);
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
