using System.Text.Json;
using KvWorker.Contracts;
using KvWorker.Storage;
using KvWorker.Tests.Infrastructure;

namespace KvWorker.Tests.Storage;

[Collection(DatabaseCollection.Name)]
public sealed class PostgresAdapterTests(DatabaseFixture db)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
    private static StoredValue Value(string json) => StoredValue.From(Json(json), maxDepth: 32);

    [Theory]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("0")]
    [InlineData("-12.5e-3")]
    [InlineData("123456789012345678901234567890")]
    [InlineData("\"text with \\\"quotes\\\", \\\\ and \\n\"")]
    [InlineData("\"nul \\u0000 inside\"")]
    [InlineData("\"ünïcødé ✓ 😀\"")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("{\"a\":[1,{\"b\":null}],\"c\":\"\\u0001\"}")]
    public async Task Every_json_kind_round_trips_exactly(string json)
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value(json), null, null, None);

        var result = await adapter.GetAsync(ns, "k", None);

        Assert.True(result.Found);
        Assert.True(JsonElement.DeepEquals(Json(json), result.Value!.Value), $"stored {json}, read {result.Value}");
        Assert.Equal(Value(json).Json, result.Value!.Value.GetRawText());
        Assert.Null(result.TtlSeconds);
    }

    [Fact]
    public async Task Nul_escape_round_trips_and_is_counted_as_six_bytes()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        var value = Value("\"a\\u0000b\"");
        Assert.Equal("\"a\\u0000b\"", value.Json);

        await adapter.SetAsync(ns, "nul", value, null, null, None);

        var read = await adapter.GetAsync(ns, "nul", None);
        Assert.Equal("a\0b", read.Value!.Value.GetString());
        Assert.Equal((10L, 10L, 1L), await db.UsageAsync(ns));
    }

    [Fact]
    public void Size_is_compact_utf8_with_non_ascii_unescaped()
    {
        // json.dumps({"k": "é", "n": [1, 2]}, separators=(",", ":"), ensure_ascii=False) == '{"k":"é","n":[1,2]}'
        var value = Value("{ \"k\" : \"\\u00e9\", \"n\" : [ 1, 2 ] }");
        Assert.Equal("{\"k\":\"é\",\"n\":[1,2]}", value.Json);
        Assert.Equal(20, value.SizeBytes);
    }

    [Fact]
    public void Values_nested_deeper_than_the_limit_are_rejected()
    {
        var deep = new string('[', 40) + new string(']', 40);
        var error = Assert.Throws<KvStoreException>(() => StoredValue.From(Json(deep), maxDepth: 32));
        Assert.Equal(KvErrorCodes.ValueSerializationError, error.Code);
    }

    [Fact]
    public async Task Ttl_is_returned_as_remaining_seconds_and_expired_entries_are_never_read()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        var set = await adapter.SetAsync(ns, "k", Value("1"), 30, null, None);
        Assert.Equal(30, set.TtlSeconds);

        var read = await adapter.GetAsync(ns, "k", None);
        Assert.InRange(read.TtlSeconds!.Value, 25, 30);

        await db.ExpireAsync(ns, "k");
        var expired = await adapter.GetAsync(ns, "k", None);
        Assert.False(expired.Found);
        Assert.Null(expired.Value);
    }

    [Fact]
    public async Task A_short_ttl_expires_on_the_database_clock()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("\"soon gone\""), 0.3, null, None);
        Assert.True((await adapter.GetAsync(ns, "k", None)).Found);

        await Task.Delay(600);

        Assert.False((await adapter.GetAsync(ns, "k", None)).Found);
    }

    [Fact]
    public async Task Set_without_ttl_makes_an_entry_persistent()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("1"), 30, null, None);
        await adapter.SetAsync(ns, "k", Value("2"), null, null, None);

        var read = await adapter.GetAsync(ns, "k", None);
        Assert.Null(read.TtlSeconds);
    }

    [Fact]
    public async Task Increment_creates_at_initial_plus_delta_and_adds_after()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        Assert.Equal(15, (await adapter.IncrementAsync(ns, "c", 5, 10, null, null, None)).Value.GetInt64());
        Assert.Equal(12, (await adapter.IncrementAsync(ns, "c", -3, 1000, null, null, None)).Value.GetInt64());
        Assert.Equal("12", (await adapter.GetAsync(ns, "c", None)).Value!.Value.GetRawText());
    }

    [Fact]
    public async Task Increment_without_ttl_keeps_the_existing_ttl_and_with_ttl_replaces_it()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.IncrementAsync(ns, "c", 1, 0, 60, null, None);

        var kept = await adapter.IncrementAsync(ns, "c", 1, 0, null, null, None);
        Assert.InRange(kept.TtlSeconds!.Value, 55, 60);

        var replaced = await adapter.IncrementAsync(ns, "c", 1, 0, 600, null, None);
        Assert.InRange(replaced.TtlSeconds!.Value, 595, 600);
        Assert.Equal(3, replaced.Value.GetInt64());
    }

    [Fact]
    public async Task Increment_of_an_expired_counter_starts_again()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.IncrementAsync(ns, "c", 41, 0, 60, null, None);
        await db.ExpireAsync(ns, "c");

        var result = await adapter.IncrementAsync(ns, "c", 1, 100, null, null, None);

        Assert.Equal(101, result.Value.GetInt64());
        Assert.Null(result.TtlSeconds);
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("1e3")]
    [InlineData("true")]
    [InlineData("\"5\"")]
    [InlineData("null")]
    [InlineData("[1]")]
    public async Task Increment_of_a_value_that_is_not_a_json_integer_fails_and_changes_nothing(string json)
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "v", Value(json), null, null, None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.IncrementAsync(ns, "v", 1, 0, null, null, None));

        Assert.Equal(KvErrorCodes.InvalidValueTypeError, error.Code);
        Assert.Equal(Value(json).Json, (await adapter.GetAsync(ns, "v", None)).Value!.Value.GetRawText());
    }

    [Fact]
    public async Task Integers_past_64_bits_stay_exact()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.IncrementAsync(ns, "c", long.MaxValue, 0, null, null, None);

        var result = await adapter.IncrementAsync(ns, "c", long.MaxValue, 0, null, null, None);
        Assert.Equal("18446744073709551614", result.Value.GetRawText());

        await adapter.SetAsync(ns, "big", Value("-99999999999999999999999999999999"), null, null, None);
        var big = await adapter.IncrementAsync(ns, "big", -1, 0, null, null, None);
        Assert.Equal("-100000000000000000000000000000000", big.Value.GetRawText());
    }

    [Fact]
    public async Task Increment_past_the_digit_limit_is_an_invalid_value_type_error()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "c", Value(new string('9', 1000)), null, null, None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.IncrementAsync(ns, "c", 1, 0, null, null, None));

        Assert.Equal(KvErrorCodes.InvalidValueTypeError, error.Code);
    }

    [Fact]
    public async Task Increments_from_many_connections_are_atomic()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++) await adapter.IncrementAsync(ns, "counter", 1, 0, null, null, None);
        })));

        Assert.Equal(400, (await adapter.GetAsync(ns, "counter", None)).Value!.Value.GetInt64());
    }

    [Fact]
    public async Task Delete_reports_whether_a_live_key_was_removed()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "live", Value("1"), null, null, None);
        await adapter.SetAsync(ns, "old", Value("1"), 60, null, None);
        await db.ExpireAsync(ns, "old");

        Assert.True((await adapter.DeleteAsync(ns, "live", null, None)).Deleted);
        Assert.False((await adapter.DeleteAsync(ns, "live", null, None)).Deleted);
        Assert.False((await adapter.DeleteAsync(ns, "old", null, None)).Deleted);
        Assert.False((await adapter.DeleteAsync(ns, "never", null, None)).Deleted);
        Assert.Equal((0L, 0L, 0L), await db.UsageAsync(ns));
    }

    [Fact]
    public async Task Namespaces_are_isolated()
    {
        var adapter = db.Adapter();
        var (a, b) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(a, "k", Value("\"a\""), null, null, None);
        await adapter.SetAsync(b, "k", Value("\"b\""), null, null, None);
        await adapter.DeleteAsync(b, "k", null, None);

        Assert.Equal("a", (await adapter.GetAsync(a, "k", None)).Value!.Value.GetString());
        Assert.False((await adapter.GetAsync(b, "k", None)).Found);
    }

    [Fact]
    public async Task A_write_over_the_namespace_quota_is_rejected_and_changes_nothing()
    {
        var adapter = db.Adapter(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "a", Value($"\"{new string('x', 60)}\""), null, null, None); // 62 bytes

        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(ns, "b", Value($"\"{new string('y', 40)}\""), null, null, None)); // 42 bytes

        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error.Code);
        Assert.Equal((100L, 62L, 42L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
        Assert.False((await adapter.GetAsync(ns, "b", None)).Found);
        Assert.Equal((62L, 62L, 1L), await db.UsageAsync(ns));
    }

    [Fact]
    public async Task Overwrites_count_only_the_difference()
    {
        var adapter = db.Adapter(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "a", Value($"\"{new string('x', 90)}\""), null, null, None);

        await adapter.SetAsync(ns, "a", Value($"\"{new string('z', 98)}\""), null, null, None);

        Assert.Equal((100L, 100L, 1L), await db.UsageAsync(ns));
    }

    [Fact]
    public async Task A_value_larger_than_the_quota_is_rejected_up_front()
    {
        var adapter = db.Adapter(namespaceQuotaBytes: 10);
        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(NewNamespace(), "k", Value("\"this is too long\""), null, null, None));
        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error.Code);
    }

    [Fact]
    public async Task Expired_entries_never_cause_a_rejection()
    {
        var adapter = db.Adapter(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "old", Value($"\"{new string('x', 80)}\""), 60, null, None);
        await db.ExpireAsync(ns, "old");

        await adapter.SetAsync(ns, "new", Value($"\"{new string('y', 80)}\""), null, null, None);

        Assert.Equal((82L, 82L, 1L), await db.UsageAsync(ns));
    }

    [Fact]
    public async Task Concurrent_writers_cannot_push_a_namespace_past_its_quota()
    {
        const long quota = 1000;
        var adapter = db.Adapter(namespaceQuotaBytes: quota);
        var ns = NewNamespace();
        var accepted = 0;

        // 16 writers race 10 distinct 98-byte values each; only 10 fit.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                try
                {
                    await adapter.SetAsync(ns, $"w{writer}-{i}", Value($"\"{new string('v', 96)}\""), null, null, None);
                    Interlocked.Increment(ref accepted);
                }
                catch (QuotaExceededException)
                {
                }
            }
        })));

        var (counted, live, entries) = await db.UsageAsync(ns);
        Assert.Equal(10, accepted);
        Assert.Equal(980, live);
        Assert.Equal(live, counted);
        Assert.Equal(10, entries);
    }

    [Fact]
    public async Task The_global_quota_spans_namespaces_and_ignores_expired_entries()
    {
        var adapter = db.Adapter(namespaceQuotaBytes: 1000, globalQuotaBytes: long.MaxValue);
        await using (var command = db.DataSource.CreateCommand("SELECT kv_recompute_global_usage()"))
            await command.ExecuteNonQueryAsync();
        long GlobalUsed() => (long)db.DataSource.CreateCommand("SELECT used_bytes FROM kv_global_usage").ExecuteScalar()!;
        var quota = GlobalUsed() + 150;
        adapter = db.Adapter(namespaceQuotaBytes: 1000, globalQuotaBytes: quota);
        var (a, b) = (NewNamespace(), NewNamespace());

        await adapter.SetAsync(a, "k", Value($"\"{new string('x', 98)}\""), 60, null, None);
        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(b, "k", Value($"\"{new string('y', 98)}\""), null, null, None));
        Assert.Equal(KvErrorCodes.GlobalQuotaExceededError, error.Code);

        await db.ExpireAsync(a, "k");
        await adapter.SetAsync(b, "k", Value($"\"{new string('y', 98)}\""), null, null, None);
        Assert.True((await adapter.GetAsync(b, "k", None)).Found);
    }
}
