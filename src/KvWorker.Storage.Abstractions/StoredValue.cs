using System.Globalization;
using System.Text;
using System.Text.Json;
using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>
/// A JSON value in the form it is stored and counted: compact, with Python's
/// <c>json.dumps(v, separators=(",", ":"), ensure_ascii=False)</c> string
/// escaping, numbers kept exactly as written. <see cref="SizeBytes"/> is its
/// UTF-8 length, the figure quotas count.
/// </summary>
public sealed record StoredValue(string Json, long SizeBytes)
{
    /// <summary>Nesting accepted when reading a stored value back; above any accepted write depth.</summary>
    private const int ReadMaxDepth = 1024;

    public static StoredValue From(JsonElement value, int maxDepth)
    {
        var json = new StringBuilder();
        Write(value, json, depth: 0, maxDepth);
        var text = json.ToString();
        return new StoredValue(text, Encoding.UTF8.GetByteCount(text));
    }

    /// <summary>Parses stored JSON text back into an element that outlives the document.</summary>
    public static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = ReadMaxDepth });
        return document.RootElement.Clone();
    }

    private static void Write(JsonElement value, StringBuilder json, int depth, int maxDepth)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
            case JsonValueKind.Array:
                if (depth >= maxDepth)
                    throw new KvStoreException(KvErrorCodes.ValueSerializationError,
                        $"value is nested deeper than {maxDepth} levels");
                var isObject = value.ValueKind == JsonValueKind.Object;
                json.Append(isObject ? '{' : '[');
                var first = true;
                if (isObject)
                {
                    foreach (var property in value.EnumerateObject())
                    {
                        if (!first) json.Append(',');
                        first = false;
                        WriteString(Unicode(property, static property => property.Name), json);
                        json.Append(':');
                        Write(property.Value, json, depth + 1, maxDepth);
                    }
                }
                else
                {
                    foreach (var item in value.EnumerateArray())
                    {
                        if (!first) json.Append(',');
                        first = false;
                        Write(item, json, depth + 1, maxDepth);
                    }
                }
                json.Append(isObject ? '}' : ']');
                break;
            case JsonValueKind.String:
                WriteString(Unicode(value, static value => value.GetString()!), json);
                break;
            case JsonValueKind.Number:
                json.Append(value.GetRawText());
                break;
            case JsonValueKind.True:
                json.Append("true");
                break;
            case JsonValueKind.False:
                json.Append("false");
                break;
            case JsonValueKind.Null:
                json.Append("null");
                break;
            default:
                throw new KvStoreException(KvErrorCodes.ValueSerializationError, "value is missing");
        }
    }

    /// <summary>A string or property name of the value, refused when it is not valid Unicode.</summary>
    private static string Unicode<T>(T source, Func<T, string> read)
    {
        try
        {
            return read(source);
        }
        catch (InvalidOperationException ex)
        {
            // A lone surrogate escape such as "\ud800" has no UTF-8 form.
            throw new KvStoreException(KvErrorCodes.ValueSerializationError, $"value holds a string that is not valid Unicode: {ex.Message}");
        }
    }

    private static void WriteString(string text, StringBuilder json)
    {
        json.Append('"');
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                case < ' ': json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default:
                    if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                        json.Append(c).Append(text[++i]);
                    else if (char.IsSurrogate(c))
                        throw new KvStoreException(KvErrorCodes.ValueSerializationError, "value holds a lone UTF-16 surrogate");
                    else
                        json.Append(c);
                    break;
            }
        }
        json.Append('"');
    }
}
