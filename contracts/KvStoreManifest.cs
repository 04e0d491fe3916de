using System.Text.Json;

namespace KvWorker.Contracts;

/// <summary>The tool manifest: the operations agents call, as function-calling tool definitions.</summary>
public static class KvStoreManifest
{
    public const string ReadFlag = "type.system.kv_store_access";
    public const string WriteFlag = "type.system.kv_store_write";

    /// <summary>The text of <c>kv_store.manifest.json</c>, also shipped beside the assembly.</summary>
    public static string Json { get; } = ReadManifest();

    private static readonly Dictionary<string, JsonElement> Tools = ReadTools();

    /// <summary>The tool definition named <paramref name="name"/>, or null when the manifest has none.</summary>
    public static JsonElement? Tool(string name) => Tools.TryGetValue(name, out var tool) ? tool : null;

    private static string ReadManifest()
    {
        using var stream = typeof(KvStoreManifest).Assembly.GetManifestResourceStream("kv_store.manifest.json")
            ?? throw new InvalidOperationException("kv_store.manifest.json is not embedded in KvWorker.Contracts");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static Dictionary<string, JsonElement> ReadTools()
    {
        using var manifest = JsonDocument.Parse(Json);
        return manifest.RootElement.GetProperty("tools").EnumerateArray()
            .ToDictionary(tool => tool.GetProperty("name").GetString()!, tool => tool.Clone());
    }
}
