using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// Where the adapter keeps what, under <see cref="RedisAdapterOptions.KeyPrefix"/>. Every key of a
/// namespace carries its bucket's hash tag, so that each script on a namespace touches one Redis
/// Cluster slot; the bucket's due index lives in that slot too, so the scripts keep it exact
/// (Scripts/namespace.lua describes the keys). The global counter and the purge's lock have a
/// tag of their own.
/// </summary>
/// <remarks>
/// The tag is the bucket's number, not the namespace: a number cannot hold the <c>}</c> that
/// would end a tag early, and a fixed number of buckets lets the purge find every namespace
/// with expired entries by reading <see cref="Buckets"/> due indexes, without a script that
/// spans slots. Buckets spread over the cluster's slots as namespaces would.
/// </remarks>
public sealed class RedisKeys(string prefix)
{
    /// <summary>Fixed: another number would move every namespace to other keys.</summary>
    public const int Buckets = 1024;

    /// <summary>
    /// The keys every script on <paramref name="ns"/> takes, in the order of
    /// Scripts/namespace.lua: values, versions, expiry, keys, meta, events, claimed, due.
    /// </summary>
    public RedisKey[] Namespace(string ns)
    {
        var tag = Tag(Bucket(ns));
        return [.. "vnxkmec".Select(kind => (RedisKey)$"{tag}{kind}:{ns}"), $"{tag}due"];
    }

    /// <summary>The namespace's values: key to compact JSON text.</summary>
    public RedisKey Values(string ns) => Namespace(ns)[0];

    /// <summary>The namespace's expiry index: key to expiry in microseconds.</summary>
    public RedisKey Expiry(string ns) => Namespace(ns)[2];

    /// <summary>The namespace's counters: bytes, entries, last version.</summary>
    public RedisKey Meta(string ns) => Namespace(ns)[4];

    /// <summary>The namespace's outbox: event lines waiting to be claimed and published.</summary>
    public RedisKey Events(string ns) => Namespace(ns)[5];

    /// <summary>
    /// A request identity's record in its namespace's slot; the length makes the name
    /// unambiguous whatever characters the parts hold.
    /// </summary>
    public RedisKey Request(string ns, string messageId) => $"{Tag(Bucket(ns))}r:{ns.Length}:{ns}{messageId}";

    /// <summary>
    /// The request a message_id is bound to, whatever its namespace, so that a message_id reused in
    /// another namespace is refused; in a bucket of its own message_id's hash, apart from any namespace's.
    /// </summary>
    public RedisKey Binding(string messageId) => $"{Tag(Bucket(messageId))}i:{messageId}";

    /// <summary>The due index of a bucket: its namespaces that have events waiting or expired entries.</summary>
    public RedisKey Due(int bucket) => $"{Tag(bucket)}due";

    /// <summary>
    /// A SCAN pattern matching every namespace's counters (<see cref="Meta"/>) under this prefix and
    /// nothing else: the tag is always three hex digits, and only counters have an <c>m</c> after it.
    /// </summary>
    public string AllMetaPattern => GlobEscaped(prefix) + "{???}m:*";

    /// <summary>Bytes of every namespace together, plus those granted to writes in flight; kept only under a global quota.</summary>
    public RedisKey GlobalBytes => prefix + "{global}bytes";

    public RedisKey PurgeLock => prefix + "{global}purge";

    /// <summary>The bucket of a namespace: a hash of its UTF-8 bytes, the same in every replica.</summary>
    public static int Bucket(string ns) =>
        (int)(BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes(ns))) % Buckets);

    private string Tag(int bucket) => $"{prefix}{{{bucket:x3}}}";

    private static string GlobEscaped(string text) =>
        string.Concat(text.Select(c => c is '*' or '?' or '[' or ']' or '\\' ? $"\\{c}" : c.ToString()));
}
