using System.Security.Cryptography;
using System.Text.Json;
using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>
/// A mutation's identity, the request's message_id, together with what it
/// identified: the operation, namespace, key and a hash of the whole request.
/// Adapters store all of it with the mutation's first answer; a later request
/// with the same message_id is a replay when everything matches, and a reuse
/// of the identity for something else (an error) when anything differs.
/// Identities span the whole store: one reused in another namespace is a reuse too.
/// </summary>
public sealed record RequestIdentity(string MessageId, string Operation, string Namespace, string Key, string RequestHash)
{
    /// <summary>As deep as a request may be; the bytes, so the hashes of identities already stored, are the default options' own.</summary>
    private static readonly JsonSerializerOptions HashJson = new() { MaxDepth = KvJsonDepth.MaxMessage };

    /// <summary>The identity of <paramref name="request"/>, a mutation of <paramref name="key"/> sent with <paramref name="messageId"/>.</summary>
    public static RequestIdentity Of(string messageId, KvOperation operation, string ns, string key, IKvRequest request)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, operation.RequestType, HashJson);
        return new RequestIdentity(messageId, operation.Name, ns, key, Convert.ToHexStringLower(SHA256.HashData(body)));
    }
}
