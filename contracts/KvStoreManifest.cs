namespace KvWorker.Contracts;

/// <summary>The tool manifest: the four operations as function-calling tool definitions.</summary>
public static class KvStoreManifest
{
    public const string ReadFlag = "type.system.kv_store_access";
    public const string WriteFlag = "type.system.kv_store_write";

    /// <summary>The text of <c>kv_store.manifest.json</c>, also shipped beside the assembly.</summary>
    public static string Json { get; } = ReadManifest();

    private static string ReadManifest()
    {
        using var stream = typeof(KvStoreManifest).Assembly.GetManifestResourceStream("kv_store.manifest.json")
            ?? throw new InvalidOperationException("kv_store.manifest.json is not embedded in KvWorker.Contracts");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
