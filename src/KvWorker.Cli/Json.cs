using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvWorker.Contracts;

namespace KvWorker.Cli;

/// <summary>How the CLI writes JSON: requests compact without absent options, output readable.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions RequestOptions = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Indented for people, one line for scripts; non-ASCII text left as it is.</summary>
    public static string Format(JsonElement element, bool indented)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions
               {
                   Indented = indented,
                   Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
               }))
        {
            element.WriteTo(writer);
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A value typed on the command line; anything that is not JSON is a usage error.</summary>
    public static JsonElement ParseValue(string text) => ParseValue(Encoding.UTF8.GetBytes(text));

    /// <summary>A value read from standard input: UTF-8, a byte-order mark allowed; anything that is not JSON is a usage error.</summary>
    public static JsonElement ParseValue(byte[] utf8)
    {
        var json = utf8.AsMemory();
        if (json.Span.StartsWith(Encoding.UTF8.Preamble)) json = json[Encoding.UTF8.Preamble.Length..];
        // JSON's reader checks the bytes of a string only when it is read: check them all now.
        if (!System.Text.Unicode.Utf8.IsValid(json.Span))
            throw new CliException(ExitCodes.Usage, "the value is not UTF-8 text");
        try
        {
            // As deep as the client sends and the worker's limits may allow, past System.Text.Json's default of 64.
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = KvJsonDepth.MaxMessage });
            return document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new CliException(ExitCodes.Usage,
                $"the value is not valid JSON ({Where(ex)}); quote text as JSON, e.g. '\"hello\"'");
        }
    }

    /// <summary>The reader's reason and where it stopped, counted from 1, in place of .NET's "LineNumber: 0 | BytePositionInLine: 1."</summary>
    private static string Where(JsonException ex)
    {
        var reason = ex.Message;
        var position = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (position >= 0) reason = reason[..position];
        reason = reason.TrimEnd('.');
        return ex is { LineNumber: { } line, BytePositionInLine: { } column } ? $"line {line + 1}, byte {column + 1}: {reason}" : reason;
    }
}
