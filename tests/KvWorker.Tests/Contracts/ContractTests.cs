
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
        Assert.Equal(["namespace", "key", "value", "ttl_seconds", "if_version", "persona", "provider"], Names(new KvSet { Namespace = "n", Key = "k", Value = value }));
        Assert.Equal(["namespace", "key", "if_version", "persona", "provider"], Names(new KvDelete { Namespace = "n", Key = "k" }));
        Assert.Equal(["namespace", "key", "delta", "initial_value", "ttl_seconds", "persona", "provider"], Names(new KvIncrement { Namespace = "n", Key = "k" }));
        Assert.Equal(["namespace", "prefix", "limit", "cursor", "persona", "provider"], Names(new KvList { Namespace = "n" }));
        Assert.Equal(["namespace", "key", "ttl_seconds", "persona", "provider"], Names(new KvTouch { Namespace = "n", Key = "k", TtlSeconds = null }));
        Assert.Equal(["namespace", "keys", "persona", "provider"], Names(new KvGetMany { Namespace = "n", Keys = ["k"] }));
    }

    [Fact]
    public void A_version_conflict_reply_carries_the_current_version_only_when_there_is_one()
    {
        Assert.Equal("""{"error":{"code":"VersionConflictError","message":"m","current_version":7}}""",
            JsonSerializer.Serialize(new KvError { Error = new KvErrorDetail { Code = KvErrorCodes.VersionConflictError, Message = "m", CurrentVersion = 7 } }));
        Assert.Equal("""{"error":{"code":"VersionConflictError","message":"m"}}""",
            JsonSerializer.Serialize(new KvError { Error = new KvErrorDetail { Code = KvErrorCodes.VersionConflictError, Message = "m" } }));
    }

    [Fact]
    public void A_touch_without_ttl_seconds_is_malformed_but_with_null_means_persistent()
    {
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<KvTouch>("""{"namespace":"n","key":"k"}"""));
        Assert.Null(JsonSerializer.Deserialize<KvTouch>("""{"namespace":"n","key":"k","ttl_seconds":null}""")!.TtlSeconds);
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
    public void A_read_reply_keeps_a_stored_null_apart_from_no_value()
    {
        var storedNull = JsonSerializer.Deserialize<KvGetResult>("""{"namespace":"n","key":"k","found":true,"value":null}""")!;
        var notFound = JsonSerializer.Deserialize<KvGetResult>("""{"namespace":"n","key":"k","found":false}""")!;
        var many = JsonSerializer.Deserialize<KvGetManyResult>(
            """{"namespace":"n","entries":[{"namespace":"n","key":"a","found":true,"value":null},{"namespace":"n","key":"b","found":false}]}""")!;

        Assert.Equal(JsonValueKind.Null, storedNull.Value?.ValueKind);
        Assert.Null(notFound.Value);
        Assert.Equal([JsonValueKind.Null, null], many.Entries.Select(entry => entry.Value?.ValueKind));
        Assert.Equal("""{"namespace":"n","key":"k","found":true,"value":null}""", JsonSerializer.Serialize(storedNull));
    }

    [Fact]
    public void The_manifest_has_a_tool_for_each_tool_operation_matching_its_descriptor_and_request_record()
    {
        using var manifest = JsonDocument.Parse(KvStoreManifest.Json);
        var tools = KvOperations.All.Where(operation => operation.Tool is not null).ToList();

        Assert.Equal(["kv_delete", "kv_get", "kv_get_many", "kv_increment", "kv_list", "kv_set", "kv_touch"], tools.Select(operation => operation.Name).Order());
        Assert.Equal(manifest.RootElement.GetProperty("tools").GetArrayLength(), tools.Count);
        foreach (var operation in tools)
        {
            var tool = operation.Tool!.Value;
            Assert.Equal([operation.RequiredFlag], tool.GetProperty("requires_flags").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(operation.Queue, manifest.RootElement.GetProperty("transport").GetProperty("queues").GetProperty(operation.Name).GetString());

            // The tool's parameters are the request record's wire fields (persona and provider are the runtime's, not the model's).
            var parameters = tool.GetProperty("parameters");
            var fields = operation.RequestType.GetProperties()
                .Select(p => p.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonPropertyNameAttribute), false)
                    .Cast<System.Text.Json.Serialization.JsonPropertyNameAttribute>().Single())
                .Select(a => a.Name).Where(name => name is not ("persona" or "provider"));
            Assert.Equal(fields.Order(), parameters.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
            var required = operation.RequestType.GetProperties()
                .Where(p => p.CustomAttributes.Any(a => a.AttributeType.Name == "RequiredMemberAttribute"))
                .Select(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name));
            Assert.Equal(required.Order(), parameters.GetProperty("required").EnumerateArray().Select(e => e.GetString()!).Order());
        }
        var errors = manifest.RootElement.GetProperty("errors").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        Assert.Equal(typeof(KvErrorCodes).GetFields().Select(f => (string?)f.GetValue(null)).ToHashSet(), errors);
    }

    [Fact]
    public void Each_request_record_belongs_to_exactly_one_operation_named_like_its_queue()
    {
        Assert.Equal(KvOperations.All.Count, KvOperations.All.Select(o => o.RequestType).Distinct().Count());
        Assert.Equal(KvOperations.All.Count, KvOperations.All.Select(o => o.Queue).Distinct().Count());
        Assert.All(KvOperations.All, operation => Assert.Same(operation, KvOperations.ForRequest(operation.RequestType)));
        Assert.All(KvOperations.All, operation => Assert.StartsWith("kv_", operation.Queue));
    }

    [Fact]
    public void The_manifest_file_ships_beside_the_contracts_assembly()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "kv_store.manifest.json");
        Assert.Equal(KvStoreManifest.Json, File.ReadAllText(path));
    }
}
