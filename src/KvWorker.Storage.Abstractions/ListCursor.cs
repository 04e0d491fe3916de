using System.Text;

namespace KvWorker.Storage;

/// <summary>
/// kv_list's paging, the same for every adapter: a cursor names the last key of
/// the page before (base64url of its UTF-8 bytes), and the next page starts after
/// it, so a full pass under concurrent writes returns no key twice and every key
/// that lived through the pass.
/// </summary>
public static class ListCursor
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;

    public static string Encode(string lastKey) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastKey))
        .TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The key a cursor names; throws <c>KeyValueStoreError</c> for one that no page handed out.</summary>
    public static string Decode(string cursor)
    {
        try
        {
            var base64 = cursor.Replace('-', '+').Replace('_', '/');
            var bytes = Convert.FromBase64String(base64.PadRight(base64.Length + (4 - base64.Length % 4) % 4, '='));
            var key = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
            if (key.Length == 0 || Encode(key) != cursor) throw new FormatException("not canonical");
            // No stored key holds a control character (requests with one are refused), so no page ended on one.
            if (key.Any(char.IsControl)) throw new FormatException("not a key");
            return key;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw KvStoreException.InvalidRequest("cursor is not one a kv_list page handed out; start again without a cursor");
        }
    }
}
