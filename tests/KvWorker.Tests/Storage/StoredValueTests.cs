
namespace KvWorker.Tests.Storage;

/// <summary>The stored form of a value, which every adapter receives ready-made.</summary>
public sealed class StoredValueTests
{
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    [Fact]
    public void Size_is_compact_utf8_with_non_ascii_unescaped()
    {
        // json.dumps({"k": "é", "n": [1, 2]}, separators=(",", ":"), ensure_ascii=False) == '{"k":"é","n":[1,2]}'
        var value = StoredValue.From(Json("{ \"k\" : \"\\u00e9\", \"n\" : [ 1, 2 ] }"), maxDepth: 32);
        Assert.Equal("{\"k\":\"é\",\"n\":[1,2]}", value.Json);
        Assert.Equal(20, value.SizeBytes);
    }

    [Fact]
    public void Values_nested_deeper_than_the_limit_are_rejected()
    {
        var deep = NestedJson.Arrays(40);
        var error = Assert.Throws<KvStoreException>(() => StoredValue.From(Json(deep), maxDepth: 32));
        Assert.Equal(KvErrorCodes.ValueSerializationError, error.Code);
    }
}
