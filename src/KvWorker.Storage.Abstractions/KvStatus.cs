namespace KvWorker.Storage;

/// <summary>
/// How a storage function or script answers a mutation, as the text both adapters'
/// SQL and Lua return: applied, replayed from its identity's record, or refused by a rule.
/// </summary>
public static class KvStatus
{
    public const string Ok = "ok";
    /// <summary>Applied before under the same identity: nothing changed, the first answer is returned.</summary>
    public const string Replayed = "replayed";
    /// <summary>The identity was used before for a different request: nothing changed.</summary>
    public const string IdentityReused = "identity_reused";
    public const string NamespaceQuota = "namespace_quota";
    public const string GlobalQuota = "global_quota";
    /// <summary>An increment of a live value that is not a JSON integer.</summary>
    public const string NotInteger = "not_integer";
    /// <summary>An increment whose result would be longer than <c>limits:max_integer_digits</c>.</summary>
    public const string TooLarge = "too_large";
    /// <summary>An <c>if_version</c> that does not match the live entry.</summary>
    public const string VersionConflict = "version_conflict";
}

/// <summary>
/// A storage function's verdict on a mutation, with the figures of the quota that decided
/// when one did, or the live entry's version when an <c>if_version</c> did not match.
/// </summary>
public sealed record KvOutcome(string Status, long UsedBytes = 0, long QuotaBytes = 0, long? CurrentVersion = null)
{
    public bool Applied => Status is KvStatus.Ok or KvStatus.Replayed;

    /// <summary>
    /// Throws the error a refused mutation answers with; <paramref name="attemptedBytes"/> is what
    /// the write needed, <paramref name="ifVersion"/> the version it was conditional on.
    /// </summary>
    public void ThrowIfRefused(string ns, string key, long attemptedBytes, RequestIdentity? identity, int maxIntegerDigits, long? ifVersion = null)
    {
        if (Applied) return;
        throw Status switch
        {
            KvStatus.VersionConflict => new VersionConflictException(ns, key, ifVersion ?? 0, CurrentVersion),
            KvStatus.NamespaceQuota => QuotaExceededException.Namespace(ns, QuotaBytes, UsedBytes, attemptedBytes),
            KvStatus.GlobalQuota => QuotaExceededException.Global(QuotaBytes, UsedBytes, attemptedBytes),
            KvStatus.NotInteger => KvStoreException.NotAnInteger(ns, key),
            KvStatus.TooLarge => KvStoreException.TooManyDigits(ns, key, maxIntegerDigits),
            KvStatus.IdentityReused => KvStoreException.IdentityReused(identity?.MessageId),
            _ => new InvalidOperationException($"the store answered with an unknown status '{Status}'"),
        };
    }
}
