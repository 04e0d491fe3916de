using System.Text.Json;
using KvWorker.Contracts;
using KvWorker.Pipeline;

namespace KvWorker.Tests.Contracts;

public sealed class ContractTests
{
    private static string[] Names(object record) =>
        JsonSerializer.SerializeToElement(record).EnumerateObject().Select(p => p.Name).ToArray();

    [Fact]
    public void Requests_use_the_snake_case_names_of_the_wire_contract()
    {
        var value = JsonDocument.Parse("1").RootElement;
        Assert.Equal(["namespace", "key", "persona", "provider"], Names(new KvGet { Namespace = "n", Key = "k" }));
        Assert.Equal(["namespace", "key", "value", "ttl_seconds", "persona", "provider"], Names(new KvSet { Namespace = "n", Key = "k", Value = value }));
        Assert.Equal(["namespace", "key", "persona", "provider"], Names(new KvDelete { Namespace = "n", Key = "k" }));
        Assert.Equal(["namespace", "key", "delta", "initial_value", "ttl_seconds", "persona", "provider"], Names(new KvIncrement { Namespace = "n", Key = "k" }));
    }

    [Fact]
    public void Increment_defaults_to_delta_one_from_zero()
    {
        var request = JsonSerializer.Deserialize<KvIncrement>("""{"namespace":"n","key":"k"}""")!;
        Assert.Equal((1, 0), (request.Delta, request.InitialValue));
    }

    [Fact]
    public void Replies_leave_out_absent_ttl_and_value_but_keep_a_stored_null()
    {
        var stored = JsonDocument.Parse("null").RootElement;
        Assert.Equal("""{"namespace":"n","key":"k","found":false}""",
            JsonSerializer.Serialize(new KvGetResult { Namespace = "n", Key = "k", Found = false }));
        Assert.Equal("""{"namespace":"n","key":"k","found":true,"value":null,"ttl_seconds":1.5}""",
            JsonSerializer.Serialize(new KvGetResult { Namespace = "n", Key = "k", Found = true, Value = stored, TtlSeconds = 1.5 }));
        Assert.Equal("""{"error":{"code":"AccessDeniedError","message":"no"}}""",
            JsonSerializer.Serialize(new KvError { Error = new KvErrorDetail { Code = KvErrorCodes.AccessDeniedError, Message = "no" } }));
    }

    [Fact]
    public void The_manifest_describes_the_four_operations_with_their_flags()
    {
        using var manifest = JsonDocument.Parse(KvStoreManifest.Json);
        var tools = manifest.RootElement.GetProperty("tools").EnumerateArray()
            .ToDictionary(t => t.GetProperty("name").GetString()!, t => t.Clone());

        Assert.Equal([KvOperations.Delete.Queue, KvOperations.Get.Queue, KvOperations.Increment.Queue, KvOperations.Set.Queue], tools.Keys.Order());
        Assert.Equal(KvStoreManifest.ReadFlag, tools[KvOperations.Get.Queue].GetProperty("requires_flags")[0].GetString());
        foreach (var write in new[] { KvOperations.Set.Queue, KvOperations.Delete.Queue, KvOperations.Increment.Queue })
            Assert.Equal(KvStoreManifest.WriteFlag, tools[write].GetProperty("requires_flags")[0].GetString());

        string[] Required(string tool) => tools[tool].GetProperty("parameters").GetProperty("required").EnumerateArray().Select(e => e.GetString()!).ToArray();
        Assert.Equal(["namespace", "key", "value"], Required(KvOperations.Set.Queue));
        Assert.Equal(["namespace", "key"], Required(KvOperations.Increment.Queue));
        var errors = manifest.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        Assert.Equal(typeof(KvErrorCodes).GetFields().Select(f => (string?)f.GetValue(null)).ToHashSet(), errors);
    }

    [Fact]
    public void The_manifest_file_ships_beside_the_contracts_assembly()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "kv_store.manifest.json");
        Assert.Equal(KvStoreManifest.Json, File.ReadAllText(path));
    }
}
