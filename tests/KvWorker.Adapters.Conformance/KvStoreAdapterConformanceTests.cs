using System.Text;
using System.Text.Json;
using KvWorker.Contracts;
using KvWorker.Storage;

namespace KvWorker.Adapters.Conformance;

/// <summary>What a conformance test asks of the adapter it runs against.</summary>
public sealed record AdapterSettings
{
    public long NamespaceQuotaBytes { get; init; } = KvStoreAdapterConformanceTests.DefaultNamespaceQuotaBytes;

    /// <summary>Null: no global limit.</summary>
    public long? GlobalQuotaBytes { get; init; }

    /// <summary>
    /// A store of its own, empty at first, that no other adapter instance writes to,
    /// so that its global usage is only what the test wrote. Without it, every
    /// adapter the test class creates works on one shared store, as replicas would.
    /// </summary>
    public bool Isolated { get; init; }

    /// <summary>The adapter's <c>purge_batch_size</c>; null: its default.</summary>
    public int? PurgeBatchSize { get; init; }
}

/// <summary>
/// The semantics every <see cref="IKvStoreAdapter"/> must have (values, TTLs,
/// increments, quotas, deletes, namespaces, request identity, usage figures),
/// written once. An adapter's test project runs them by subclassing this class
/// and creating its adapter in <see cref="CreateAdapterAsync"/>; each test uses
/// namespaces of its own, so tests never depend on what another left behind.
/// </summary>
/// <remarks>
/// Expiry is tested with real, short TTLs (a fraction of a second) measured on
/// the store's clock, so an adapter needs no test hook to age its entries.
/// Events are looked at in <see cref="Events"/>, which the adapters publish to.
/// </remarks>
public abstract partial class KvStoreAdapterConformanceTests : IAsyncLifetime
{
    public const long DefaultNamespaceQuotaBytes = 1024 * 1024;

    /// <summary>The <c>limits:max_integer_digits</c> the adapters under test must be created with (the default).</summary>
    public const int MaxIntegerDigits = 1000;

    private const double ShortTtlSeconds = 0.2;
    private static readonly TimeSpan PastShortTtl = TimeSpan.FromMilliseconds(500);
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>
    /// An adapter with these quotas and <see cref="MaxIntegerDigits"/>. Called
    /// several times by one test when it needs several replicas of a store.
    /// </summary>
    protected abstract Task<IKvStoreAdapter> CreateAdapterAsync(AdapterSettings settings);

    /// <summary>The events the adapters of this test published: give it to them as their <see cref="IKvEventPublisher"/>.</summary>
    protected RecordedEvents Events { get; } = new();

    /// <summary>
    /// Publishes to <see cref="Events"/> what the adapters of this test queued for a publisher
    /// that runs beside them (PostgreSQL's outbox); nothing for adapters that publish themselves.
    /// </summary>
    protected virtual Task PublishWaitingEventsAsync() => Task.CompletedTask;

    public virtual Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Runs after each test: release what <see cref="CreateAdapterAsync"/> made for it.</summary>
    public virtual Task DisposeAsync() => Task.CompletedTask;

    private Task<IKvStoreAdapter> AdapterAsync(
        long namespaceQuotaBytes = DefaultNamespaceQuotaBytes, long? globalQuotaBytes = null, bool isolated = false) =>
        CreateAdapterAsync(new AdapterSettings { NamespaceQuotaBytes = namespaceQuotaBytes, GlobalQuotaBytes = globalQuotaBytes, Isolated = isolated });

    private async Task<IKvStoreAdapter[]> ReplicasAsync(int count, long namespaceQuotaBytes = DefaultNamespaceQuotaBytes)
    {
        var adapters = new IKvStoreAdapter[count];
        for (var i = 0; i < count; i++) adapters[i] = await AdapterAsync(namespaceQuotaBytes);
        return adapters;
    }

    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");
    private static string NewRequestId() => Guid.NewGuid().ToString();
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
    private static StoredValue Value(string json) => StoredValue.From(Json(json), maxDepth: 32);

    /// <summary>A JSON string value whose compact form is exactly <paramref name="bytes"/> bytes.</summary>
    private static StoredValue ValueOfSize(int bytes, char fill = 'x') => Value($"\"{new string(fill, bytes - 2)}\"");

    private static async Task<(long UsedBytes, long Entries)> UsageAsync(IKvStoreAdapter adapter, string ns)
    {
        var usage = await adapter.UsageAsync(ns, None);
        Assert.Equal(ns, usage.Namespace);
        return (usage.UsedBytes, usage.Entries);
    }

    private static async Task<string?> RawAsync(IKvStoreAdapter adapter, string ns, string key)
    {
        var read = await adapter.GetAsync(ns, key, None);
        return read.Found ? read.Value!.Value.GetRawText() : null;
    }

    // ---- Values ----

    [Theory]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("0")]
    [InlineData("-12.5e-3")]
    [InlineData("1E+400")]
    [InlineData("123456789012345678901234567890")]
    [InlineData("\"\"")]
    [InlineData("\"text with \\\"quotes\\\", \\\\ / and \\n\\t\"")]
    [InlineData("\"nul \\u0000 inside\"")]
    [InlineData("\"ünïcødé ✓ 😀\"")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("{\"a\":[1,{\"b\":null}],\"c\":\"\\u0001\",\"\":[[],{}]}")]
    public async Task Every_json_kind_round_trips_exactly_and_is_counted_in_utf8_bytes(string json)
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var value = Value(json);

        var set = await adapter.SetAsync(ns, "k", value, null, null, None);
        var read = await adapter.GetAsync(ns, "k", None);

        Assert.Equal(value.Json, set.Value.GetRawText());
        Assert.True(read.Found);
        Assert.Equal(value.Json, read.Value!.Value.GetRawText());
        Assert.True(JsonElement.DeepEquals(Json(json), read.Value!.Value), $"stored {json}, read {read.Value}");
        Assert.Null(read.TtlSeconds);
        Assert.Equal((Encoding.UTF8.GetByteCount(value.Json), 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_nul_escape_round_trips_and_counts_as_its_six_escaped_bytes()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var value = Value("\"a\\u0000b\"");
        Assert.Equal("\"a\\u0000b\"", value.Json);

        await adapter.SetAsync(ns, "nul", value, null, null, None);

        var read = await adapter.GetAsync(ns, "nul", None);
        Assert.Equal("a\0b", read.Value!.Value.GetString());
        Assert.Equal((10L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_missing_key_is_not_found()
    {
        var adapter = await AdapterAsync();

        var read = await adapter.GetAsync(NewNamespace(), "never", None);

        Assert.False(read.Found);
        Assert.Null(read.Value);
        Assert.Null(read.TtlSeconds);
    }

    [Fact]
    public async Task Writing_again_replaces_the_value()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("{\"v\":1}"), null, null, None);

        await adapter.SetAsync(ns, "k", Value("[2]"), null, null, None);

        Assert.Equal("[2]", await RawAsync(adapter, ns, "k"));
        Assert.Equal((3L, 1L), await UsageAsync(adapter, ns));
    }

    // ---- TTL ----

    [Fact]
    public async Task Set_returns_its_ttl_and_get_the_remaining_seconds()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();

        var set = await adapter.SetAsync(ns, "k", Value("1"), 30.5, null, None);
        var read = await adapter.GetAsync(ns, "k", None);

        Assert.Equal(30.5, set.TtlSeconds);
        Assert.InRange(read.TtlSeconds!.Value, 25, 30.5);
    }

    [Fact]
    public async Task The_remaining_ttl_has_sub_second_precision()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("1"), 5.5, null, None);

        var remaining = (await adapter.GetAsync(ns, "k", None)).TtlSeconds!.Value;

        Assert.InRange(remaining, 4.5, 5.5);
        Assert.NotEqual(Math.Round(remaining), remaining); // whole seconds would be 5 (or 6)
    }

    [Fact]
    public async Task An_entry_is_read_until_its_ttl_runs_out_on_the_store_clock_and_never_after()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("\"soon gone\""), 1.0, null, None);
        Assert.True((await adapter.GetAsync(ns, "k", None)).Found);

        await Task.Delay(TimeSpan.FromMilliseconds(1300));

        var expired = await adapter.GetAsync(ns, "k", None);
        Assert.False(expired.Found);
        Assert.Null(expired.Value);
    }

    [Fact]
    public async Task Set_without_ttl_makes_an_entry_persistent_and_with_one_replaces_it()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "persistent", Value("1"), 30, null, None);
        await adapter.SetAsync(ns, "persistent", Value("2"), null, null, None);
        await adapter.SetAsync(ns, "longer", Value("1"), 30, null, None);
        await adapter.SetAsync(ns, "longer", Value("2"), 600, null, None);

        Assert.Null((await adapter.GetAsync(ns, "persistent", None)).TtlSeconds);
        Assert.InRange((await adapter.GetAsync(ns, "longer", None)).TtlSeconds!.Value, 595, 600);
    }

    [Fact]
    public async Task Writing_over_an_expired_entry_creates_it_afresh()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("\"old\""), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        await adapter.SetAsync(ns, "k", Value("\"new\""), null, null, None);

        var read = await adapter.GetAsync(ns, "k", None);
        Assert.Equal("\"new\"", read.Value!.Value.GetRawText());
        Assert.Null(read.TtlSeconds);
        Assert.Equal((5L, 1L), await UsageAsync(adapter, ns));
    }

    // ---- Increment ----

    [Fact]
    public async Task Increment_creates_at_initial_plus_delta_and_adds_after()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();

        var created = await adapter.IncrementAsync(ns, "c", 5, 10, null, null, None);
        var added = await adapter.IncrementAsync(ns, "c", -3, 1000, null, null, None);

        Assert.Equal("15", created.Value.GetRawText());
        Assert.Null(created.TtlSeconds);
        Assert.Equal("12", added.Value.GetRawText());
        Assert.Equal("12", await RawAsync(adapter, ns, "c"));
        Assert.Equal((2L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task Increment_without_ttl_keeps_the_existing_ttl_and_with_ttl_replaces_it()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var created = await adapter.IncrementAsync(ns, "c", 1, 0, 60, null, None);
        Assert.InRange(created.TtlSeconds!.Value, 55, 60);

        var kept = await adapter.IncrementAsync(ns, "c", 1, 0, null, null, None);
        Assert.InRange(kept.TtlSeconds!.Value, 55, 60);
        Assert.InRange((await adapter.GetAsync(ns, "c", None)).TtlSeconds!.Value, 55, 60);

        var replaced = await adapter.IncrementAsync(ns, "c", 1, 0, 600, null, None);
        Assert.InRange(replaced.TtlSeconds!.Value, 595, 600);
        Assert.Equal(3, replaced.Value.GetInt64());
    }

    [Fact]
    public async Task Increment_of_a_persistent_value_without_ttl_keeps_it_persistent()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "c", Value("7"), null, null, None);

        var result = await adapter.IncrementAsync(ns, "c", 1, 0, null, null, None);

        Assert.Equal(8, result.Value.GetInt64());
        Assert.Null(result.TtlSeconds);
        Assert.Null((await adapter.GetAsync(ns, "c", None)).TtlSeconds);
    }

    [Fact]
    public async Task Increment_of_an_expired_counter_starts_again()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.IncrementAsync(ns, "c", 41, 0, ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var result = await adapter.IncrementAsync(ns, "c", 1, 100, null, null, None);

        Assert.Equal(101, result.Value.GetInt64());
        Assert.Null(result.TtlSeconds);
        Assert.Equal((3L, 1L), await UsageAsync(adapter, ns));
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("1e3")]
    [InlineData("-2.5")]
    [InlineData("true")]
    [InlineData("\"5\"")]
    [InlineData("null")]
    [InlineData("[1]")]
    [InlineData("{\"n\":1}")]
    public async Task Increment_of_a_value_that_is_not_a_json_integer_fails_and_changes_nothing(string json)
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "v", Value(json), null, null, None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.IncrementAsync(ns, "v", 1, 0, null, null, None));

        Assert.Equal(KvErrorCodes.InvalidValueTypeError, error.Code);
        Assert.Equal(Value(json).Json, await RawAsync(adapter, ns, "v"));
    }

    [Theory]
    [InlineData("0", 1, "1")]
    [InlineData("-5", 3, "-2")]
    [InlineData("-2", 10, "8")]
    [InlineData("5", -5, "0")]
    [InlineData("-5", 5, "0")]
    [InlineData("-0", 1, "1")]
    [InlineData("9", 1, "10")]
    [InlineData("100000000000000000000", -1, "99999999999999999999")]
    [InlineData("99999999999999999999", 1, "100000000000000000000")]
    [InlineData("-99999999999999999999999999999999", -1, "-100000000000000000000000000000000")]
    [InlineData("-100000000000000000000", 1, "-99999999999999999999")]
    [InlineData("9223372036854775807", 1, "9223372036854775808")]
    [InlineData("-9223372036854775808", -1, "-9223372036854775809")]
    [InlineData("12345678901234567890123", -9223372036854775808, "12336455529197713114315")]
    public async Task Increments_are_exact_integer_arithmetic(string stored, long delta, string expected)
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "c", Value(stored), null, null, None);

        var result = await adapter.IncrementAsync(ns, "c", delta, 0, null, null, None);

        Assert.Equal(expected, result.Value.GetRawText());
        Assert.Equal(expected, await RawAsync(adapter, ns, "c"));
        Assert.Equal((expected.Length, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task Integers_past_64_bits_stay_exact()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.IncrementAsync(ns, "c", long.MaxValue, 0, null, null, None);

        var result = await adapter.IncrementAsync(ns, "c", long.MaxValue, 0, null, null, None);
        Assert.Equal("18446744073709551614", result.Value.GetRawText());

        var fromInitial = await adapter.IncrementAsync(ns, "d", long.MinValue, long.MinValue, null, null, None);
        Assert.Equal("-18446744073709551616", fromInitial.Value.GetRawText());
    }

    [Fact]
    public async Task Increment_past_the_digit_limit_is_an_invalid_value_type_error_and_changes_nothing()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var largest = new string('9', MaxIntegerDigits);
        await adapter.SetAsync(ns, "c", Value(largest), null, null, None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.IncrementAsync(ns, "c", 1, 0, null, null, None));

        Assert.Equal(KvErrorCodes.InvalidValueTypeError, error.Code);
        Assert.Equal(largest, await RawAsync(adapter, ns, "c"));
        var down = await adapter.IncrementAsync(ns, "c", -1, 0, null, null, None);
        Assert.Equal(new string('9', MaxIntegerDigits - 1) + "8", down.Value.GetRawText());
    }

    [Fact]
    public async Task Increment_of_a_stored_integer_longer_than_the_digit_limit_is_an_invalid_value_type_error()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var tooLong = "1" + new string('0', MaxIntegerDigits + 5);
        await adapter.SetAsync(ns, "c", Value(tooLong), null, null, None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.IncrementAsync(ns, "c", -1, 0, null, null, None));

        Assert.Equal(KvErrorCodes.InvalidValueTypeError, error.Code);
        Assert.Equal(tooLong, await RawAsync(adapter, ns, "c"));
    }

    [Fact]
    public async Task Increments_from_many_replicas_at_once_are_atomic()
    {
        var replicas = await ReplicasAsync(4);
        var ns = NewNamespace();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++) await replicas[worker % replicas.Length].IncrementAsync(ns, "counter", 1, 0, null, null, None);
        })));

        Assert.Equal("400", await RawAsync(replicas[0], ns, "counter"));
    }

    // ---- Delete ----

    [Fact]
    public async Task Delete_reports_whether_a_live_key_was_removed_and_frees_its_bytes()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "live", Value("1"), null, null, None);
        await adapter.SetAsync(ns, "old", Value("1"), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        Assert.True((await adapter.DeleteAsync(ns, "live", null, None)).Deleted);
        Assert.False((await adapter.DeleteAsync(ns, "live", null, None)).Deleted);
        Assert.False((await adapter.DeleteAsync(ns, "old", null, None)).Deleted);
        Assert.False((await adapter.DeleteAsync(ns, "never", null, None)).Deleted);
        Assert.False((await adapter.GetAsync(ns, "live", None)).Found);
        Assert.Equal((0L, 0L), await UsageAsync(adapter, ns));
    }

    // ---- Namespaces ----

    [Fact]
    public async Task Namespaces_are_isolated()
    {
        var adapter = await AdapterAsync();
        var (a, b) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(a, "k", Value("\"a\""), null, null, None);
        await adapter.SetAsync(b, "k", Value("\"b\""), null, null, None);
        await adapter.IncrementAsync(a, "n", 1, 0, null, null, None);
        await adapter.IncrementAsync(b, "n", 5, 0, null, null, None);
        await adapter.DeleteAsync(b, "k", null, None);

        Assert.Equal("a", (await adapter.GetAsync(a, "k", None)).Value!.Value.GetString());
        Assert.False((await adapter.GetAsync(b, "k", None)).Found);
        Assert.Equal("1", await RawAsync(adapter, a, "n"));
        Assert.Equal("5", await RawAsync(adapter, b, "n"));
        Assert.Equal((4L, 2L), await UsageAsync(adapter, a));
        Assert.Equal((1L, 1L), await UsageAsync(adapter, b));
    }

    [Fact]
    public async Task Names_that_join_alike_stay_apart()
    {
        // An adapter that builds storage keys by joining namespace and key must not confuse these.
        var adapter = await AdapterAsync();
        var root = NewNamespace();
        await adapter.SetAsync(root, "x:y", Value("1"), null, null, None);
        await adapter.SetAsync(root + ":x", "y", Value("22"), null, null, None);
        await adapter.SetAsync(root + ":", "x:y", Value("333"), null, null, None);

        Assert.Equal("1", await RawAsync(adapter, root, "x:y"));
        Assert.Equal("22", await RawAsync(adapter, root + ":x", "y"));
        Assert.Equal("333", await RawAsync(adapter, root + ":", "x:y"));
        Assert.Null(await RawAsync(adapter, root, "x"));
        Assert.Equal((1L, 1L), await UsageAsync(adapter, root));
        Assert.Equal((2L, 1L), await UsageAsync(adapter, root + ":x"));
        Assert.Equal((3L, 1L), await UsageAsync(adapter, root + ":"));
    }

    // ---- Quotas ----

    [Fact]
    public async Task A_write_over_the_namespace_quota_is_rejected_and_changes_nothing()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "a", ValueOfSize(62), null, null, None);

        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(ns, "b", ValueOfSize(42, 'y'), null, null, None));

        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error.Code);
        Assert.Equal((100L, 62L, 42L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
        Assert.False((await adapter.GetAsync(ns, "b", None)).Found);
        Assert.Equal((62L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task An_overwrite_that_would_exceed_the_quota_is_rejected_and_keeps_the_old_entry()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        var old = ValueOfSize(60);
        await adapter.SetAsync(ns, "a", old, 30, null, None);
        await adapter.SetAsync(ns, "b", ValueOfSize(30), null, null, None);

        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(ns, "a", ValueOfSize(71, 'z'), null, null, None));

        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error.Code);
        Assert.Equal((100L, 90L, 71L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
        var read = await adapter.GetAsync(ns, "a", None);
        Assert.Equal(old.Json, read.Value!.Value.GetRawText());
        Assert.InRange(read.TtlSeconds!.Value, 25, 30);
        Assert.Equal((90L, 2L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task An_increment_over_the_namespace_quota_is_rejected_and_changes_nothing()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 10);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "s", ValueOfSize(9), null, null, None);
        await adapter.IncrementAsync(ns, "c", 9, 0, null, null, None); // 1 byte: the quota is full

        var created = await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.IncrementAsync(ns, "d", 100, 0, null, null, None));
        var grown = await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.IncrementAsync(ns, "c", 1, 0, null, null, None));

        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, created.Code);
        Assert.Equal((10L, 10L, 3L), (created.QuotaBytes, created.UsedBytes, created.AttemptedBytes));
        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, grown.Code);
        Assert.False((await adapter.GetAsync(ns, "d", None)).Found);
        Assert.Equal("9", await RawAsync(adapter, ns, "c"));
        Assert.Equal((10L, 2L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task Overwrites_count_only_the_difference()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "a", ValueOfSize(90), null, null, None);

        await adapter.SetAsync(ns, "a", ValueOfSize(100, 'z'), null, null, None);
        Assert.Equal((100L, 1L), await UsageAsync(adapter, ns));

        await adapter.SetAsync(ns, "a", ValueOfSize(40), null, null, None);
        await adapter.SetAsync(ns, "b", ValueOfSize(60), null, null, None);
        Assert.Equal((100L, 2L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task Deleting_frees_quota_for_new_writes()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "a", ValueOfSize(100), null, null, None);
        await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.SetAsync(ns, "b", ValueOfSize(10), null, null, None));

        await adapter.DeleteAsync(ns, "a", null, None);
        await adapter.SetAsync(ns, "b", ValueOfSize(100), null, null, None);

        Assert.Equal((100L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_value_larger_than_a_quota_is_rejected_and_nothing_is_written()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 10);
        var ns = NewNamespace();

        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(ns, "k", Value("\"this is too long\""), null, null, None));

        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error.Code);
        Assert.Equal((10L, 18L), (error.QuotaBytes, error.AttemptedBytes));
        Assert.False((await adapter.GetAsync(ns, "k", None)).Found);
        Assert.Equal((0L, 0L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_value_larger_than_the_whole_quota_is_rejected_with_the_real_usage()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var withGlobal = await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 100, isolated: true);
        var (ns, other) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(ns, "a", ValueOfSize(87), null, null, None);
        await withGlobal.SetAsync(ns, "a", ValueOfSize(87), null, null, None);

        var error = await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.SetAsync(ns, "b", ValueOfSize(122), null, null, None));
        var global = await Assert.ThrowsAsync<QuotaExceededException>(() => withGlobal.SetAsync(other, "b", ValueOfSize(122), null, null, None));

        Assert.Equal(KvErrorCodes.NamespaceQuotaExceededError, error.Code);
        Assert.Equal((100L, 87L, 122L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
        Assert.Equal(KvErrorCodes.GlobalQuotaExceededError, global.Code);
        Assert.Equal((100L, 87L, 122L), (global.QuotaBytes, global.UsedBytes, global.AttemptedBytes));
        Assert.Equal((87L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_value_larger_than_the_global_quota_is_rejected()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 10, isolated: true);
        var ns = NewNamespace();

        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(ns, "k", Value("\"this is too long\""), null, null, None));

        Assert.Equal(KvErrorCodes.GlobalQuotaExceededError, error.Code);
        Assert.False((await adapter.GetAsync(ns, "k", None)).Found);
    }

    /// <summary>An adapter whose namespace or global quota is 20 bytes (the other far above), and the code it refuses with.</summary>
    private async Task<(IKvStoreAdapter Adapter, string RefusalCode)> AdapterWithQuotaOf20Async(bool global) => global
        ? (await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 20, isolated: true), KvErrorCodes.GlobalQuotaExceededError)
        : (await AdapterAsync(namespaceQuotaBytes: 20), KvErrorCodes.NamespaceQuotaExceededError);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_value_larger_than_the_quota_is_rejected_with_the_live_usage(bool global)
    {
        // The figures of a refusal are the store's live bytes, as in every other refusal: an expired
        // entry is not counted, though no write could ever make room for this one.
        var (adapter, refusalCode) = await AdapterWithQuotaOf20Async(global);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "old", ValueOfSize(5), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "live", ValueOfSize(7), null, null, None);
        await Task.Delay(PastShortTtl);

        var error = await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.SetAsync(ns, "k", ValueOfSize(25), null, null, None));

        Assert.Equal(refusalCode, error.Code);
        Assert.Equal((20L, 7L, 25L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_write_refused_by_a_quota_does_not_count_the_expired_entry_it_would_replace_as_used(bool global)
    {
        var (adapter, refusalCode) = await AdapterWithQuotaOf20Async(global);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", ValueOfSize(5), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "live", ValueOfSize(10), null, null, None);
        await Task.Delay(PastShortTtl);

        var error = await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.SetAsync(ns, "k", ValueOfSize(15), null, null, None));

        Assert.Equal(refusalCode, error.Code);
        Assert.Equal((20L, 10L, 15L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
    }

    [Fact]
    public async Task Expired_entries_never_cause_a_rejection_and_their_bytes_are_reclaimed()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "old", ValueOfSize(50), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "older", ValueOfSize(32), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        await adapter.SetAsync(ns, "new", ValueOfSize(82, 'y'), null, null, None);
        await adapter.IncrementAsync(ns, "c", 12345678, 0, null, null, None); // 8 more bytes: 90

        Assert.Equal((90L, 2L), await UsageAsync(adapter, ns));
        Assert.False((await adapter.GetAsync(ns, "old", None)).Found);
    }

    [Fact]
    public async Task Concurrent_writers_on_many_replicas_cannot_push_a_namespace_past_its_quota()
    {
        const long quota = 1000;
        var replicas = await ReplicasAsync(4, quota);
        var ns = NewNamespace();
        var accepted = new System.Collections.Concurrent.ConcurrentBag<string>();

        // 16 writers race 10 distinct 98-byte values each; only 10 fit.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                try
                {
                    await replicas[writer % replicas.Length].SetAsync(ns, $"w{writer}-{i}", ValueOfSize(98), null, null, None);
                    accepted.Add($"w{writer}-{i}");
                }
                catch (QuotaExceededException)
                {
                }
            }
        })));

        Assert.Equal(10, accepted.Count);
        foreach (var key in accepted) Assert.True((await replicas[0].GetAsync(ns, key, None)).Found);
        Assert.Equal((980L, 10L), await UsageAsync(replicas[0], ns));
    }

    [Fact]
    public async Task The_global_quota_spans_namespaces()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 150, isolated: true);
        var (a, b) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(a, "k", ValueOfSize(100), null, null, None);

        var error = await Assert.ThrowsAsync<QuotaExceededException>(
            () => adapter.SetAsync(b, "k", ValueOfSize(100, 'y'), null, null, None));

        Assert.Equal(KvErrorCodes.GlobalQuotaExceededError, error.Code);
        Assert.Equal((150L, 100L, 100L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
        Assert.False((await adapter.GetAsync(b, "k", None)).Found);

        await adapter.SetAsync(b, "k", ValueOfSize(50, 'y'), null, null, None);
        await adapter.DeleteAsync(a, "k", null, None);
        await adapter.SetAsync(b, "more", ValueOfSize(100, 'y'), null, null, None);
        Assert.Equal((150L, 2L), await UsageAsync(adapter, b));
    }

    [Fact]
    public async Task The_global_quota_ignores_expired_entries()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 150, isolated: true);
        var (a, b) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(a, "k", ValueOfSize(100), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        await adapter.SetAsync(b, "k", ValueOfSize(100, 'y'), null, null, None);

        Assert.True((await adapter.GetAsync(b, "k", None)).Found);
    }

    [Fact]
    public async Task An_expired_entry_written_again_at_its_old_size_is_held_to_the_global_quota()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 150, isolated: true);
        var (a, b) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(a, "k", ValueOfSize(100), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);
        await adapter.SetAsync(b, "k", ValueOfSize(100, 'y'), null, null, None);

        // Its size has not changed, but it would be 100 live bytes more.
        var error = await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.SetAsync(a, "k", ValueOfSize(100), null, null, None));

        Assert.Equal(KvErrorCodes.GlobalQuotaExceededError, error.Code);
        Assert.Equal((150L, 100L, 100L), (error.QuotaBytes, error.UsedBytes, error.AttemptedBytes));
        Assert.False((await adapter.GetAsync(a, "k", None)).Found);
    }

    [Fact]
    public async Task Concurrent_writers_cannot_push_the_store_past_its_global_quota()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100_000, globalQuotaBytes: 1000, isolated: true);
        var namespaces = Enumerable.Range(0, 16).Select(_ => NewNamespace()).ToArray();
        var accepted = 0;

        await Task.WhenAll(namespaces.Select(ns => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                try
                {
                    await adapter.SetAsync(ns, $"k{i}", ValueOfSize(98), null, null, None);
                    Interlocked.Increment(ref accepted);
                }
                catch (QuotaExceededException error)
                {
                    Assert.Equal(KvErrorCodes.GlobalQuotaExceededError, error.Code);
                }
            }
        })));

        long used = 0, entries = 0;
        foreach (var ns in namespaces)
        {
            var usage = await UsageAsync(adapter, ns);
            (used, entries) = (used + usage.UsedBytes, entries + usage.Entries);
        }
        Assert.Equal(10, accepted);
        Assert.Equal((980L, 10L), (used, entries));
    }

    // ---- Usage ----

    [Fact]
    public async Task Usage_reports_bytes_entries_and_quotas()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 5000);
        var withGlobal = await AdapterAsync(namespaceQuotaBytes: 6000, globalQuotaBytes: 7000, isolated: true);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "a", Value("\"abc\""), null, null, None);
        await adapter.SetAsync(ns, "b", Value("[1,2]"), 60, null, None);
        await adapter.IncrementAsync(ns, "c", 42, 0, null, null, None);

        var usage = await adapter.UsageAsync(ns, None);
        var empty = await withGlobal.UsageAsync(NewNamespace(), None);

        Assert.Equal((12L, 3L, 5000L, (long?)null), (usage.UsedBytes, usage.Entries, usage.QuotaBytes, usage.GlobalQuotaBytes));
        Assert.Equal((0L, 0L, 6000L, (long?)7000), (empty.UsedBytes, empty.Entries, empty.QuotaBytes, empty.GlobalQuotaBytes));
    }

    // ---- Request identity ----

    [Fact]
    public async Task A_set_repeated_with_its_request_id_changes_nothing_further_and_returns_the_first_result()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var requestId = NewRequestId();
        var first = await adapter.SetAsync(ns, "k", Value("\"first\""), 60, requestId, None);
        await adapter.SetAsync(ns, "k", Value("\"second\""), null, NewRequestId(), None);

        var repeated = await adapter.SetAsync(ns, "k", Value("\"first\""), 60, requestId, None);

        Assert.Equal(first.Value.GetRawText(), repeated.Value.GetRawText());
        Assert.Equal(first.TtlSeconds, repeated.TtlSeconds);
        var read = await adapter.GetAsync(ns, "k", None);
        Assert.Equal("\"second\"", read.Value!.Value.GetRawText());
        Assert.Null(read.TtlSeconds);
    }

    [Fact]
    public async Task An_increment_repeated_with_its_request_id_is_applied_once()
    {
        var replicas = await ReplicasAsync(2);
        var ns = NewNamespace();
        var requestId = NewRequestId();

        var first = await replicas[0].IncrementAsync(ns, "c", 5, 0, null, requestId, None);
        var repeated = await replicas[1].IncrementAsync(ns, "c", 5, 0, null, requestId, None);
        var another = await replicas[0].IncrementAsync(ns, "c", 5, 0, null, NewRequestId(), None);

        Assert.Equal("5", first.Value.GetRawText());
        Assert.Equal("5", repeated.Value.GetRawText());
        Assert.Equal("10", another.Value.GetRawText());
        Assert.Equal("10", await RawAsync(replicas[0], ns, "c"));
    }

    [Fact]
    public async Task A_delete_repeated_with_its_request_id_changes_nothing_further()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var requestId = NewRequestId();
        await adapter.SetAsync(ns, "k", Value("1"), null, null, None);
        var first = await adapter.DeleteAsync(ns, "k", requestId, None);
        await adapter.SetAsync(ns, "k", Value("2"), null, null, None);

        var repeated = await adapter.DeleteAsync(ns, "k", requestId, None);

        Assert.True(first.Deleted);
        Assert.True(repeated.Deleted);
        Assert.Equal("2", await RawAsync(adapter, ns, "k"));
    }

    [Fact]
    public async Task A_rejected_request_is_not_recorded_so_its_retry_is_judged_afresh()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        var requestId = NewRequestId();
        await adapter.SetAsync(ns, "a", ValueOfSize(62), null, null, None);
        await Assert.ThrowsAsync<QuotaExceededException>(() => adapter.SetAsync(ns, "b", ValueOfSize(42), null, requestId, None));

        await adapter.DeleteAsync(ns, "a", null, None);
        var retried = await adapter.SetAsync(ns, "b", ValueOfSize(42), null, requestId, None);

        Assert.Equal(ValueOfSize(42).Json, retried.Value.GetRawText());
        Assert.True((await adapter.GetAsync(ns, "b", None)).Found);
        Assert.Equal((42L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task Mutations_without_a_request_id_are_each_applied()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();

        await adapter.IncrementAsync(ns, "c", 1, 0, null, null, None);
        var second = await adapter.IncrementAsync(ns, "c", 1, 0, null, null, None);

        Assert.Equal("2", second.Value.GetRawText());
    }

    /// <summary>
    /// Runs <paramref name="reuse"/>, which sends a different request under <paramref name="requestId"/>,
    /// and checks that it fails with KeyValueStoreError naming the id and changes nothing.
    /// </summary>
    private static async Task AssertRefusedAsReusedIdentityAsync(
        IKvStoreAdapter adapter, string ns, string requestId, Func<Task> reuse, params (string Key, string? Raw)[] unchanged)
    {
        var error = await Assert.ThrowsAnyAsync<KvStoreException>(reuse);
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error.Code);
        Assert.Contains(requestId, error.Message);
        foreach (var (key, raw) in unchanged)
            Assert.Equal(raw, await RawAsync(adapter, ns, key));
    }

    [Fact]
    public async Task A_request_id_reused_for_another_key_is_refused_and_changes_nothing()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var requestId = NewRequestId();
        await adapter.SetAsync(ns, "first", Value("1"), null, requestId, None);

        await AssertRefusedAsReusedIdentityAsync(adapter, ns, requestId,
            () => adapter.SetAsync(ns, "second", Value("1"), null, requestId, None),
            ("first", "1"), ("second", null));
        Assert.Equal((1L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_request_id_reused_in_another_namespace_is_refused_and_changes_nothing()
    {
        var adapter = await AdapterAsync();
        var (first, other) = (NewNamespace(), NewNamespace());
        var requestId = NewRequestId();
        await adapter.IncrementAsync(first, "c", 1, 0, null, requestId, None);

        await AssertRefusedAsReusedIdentityAsync(adapter, other, requestId,
            () => adapter.IncrementAsync(other, "c", 1, 0, null, requestId, None), ("c", null));
        Assert.Equal("1", (await adapter.IncrementAsync(first, "c", 1, 0, null, requestId, None)).Value.GetRawText());
        Assert.Equal((0L, 0L), await UsageAsync(adapter, other));
    }

    [Fact]
    public async Task A_request_id_of_a_refused_request_may_identify_another_request()
    {
        var adapter = await AdapterAsync();
        var (first, other) = (NewNamespace(), NewNamespace());
        var requestId = NewRequestId();
        await Assert.ThrowsAsync<VersionConflictException>(() => adapter.DeleteAsync(first, "k", requestId, None, ifVersion: 3));

        // Refused, so not recorded: the id is free, in any namespace.
        var set = await adapter.SetAsync(other, "k", Value("1"), null, requestId, None);

        Assert.Equal("1", set.Value.GetRawText());
        await AssertRefusedAsReusedIdentityAsync(adapter, first, requestId,
            () => adapter.DeleteAsync(first, "k", requestId, None, ifVersion: 3));
    }

    [Fact]
    public async Task A_request_id_reused_for_another_operation_is_refused_and_changes_nothing()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var requestId = NewRequestId();
        await adapter.SetAsync(ns, "k", Value("7"), null, null, None);
        var deleted = await adapter.DeleteAsync(ns, "gone", requestId, None);
        Assert.False(deleted.Deleted);

        await AssertRefusedAsReusedIdentityAsync(adapter, ns, requestId,
            () => adapter.IncrementAsync(ns, "gone", 1, 0, null, requestId, None),
            ("gone", null));
        await AssertRefusedAsReusedIdentityAsync(adapter, ns, requestId,
            () => adapter.SetAsync(ns, "gone", Value("1"), null, requestId, None),
            ("gone", null));
        // The first request itself is still answered as before.
        Assert.False((await adapter.DeleteAsync(ns, "gone", requestId, None)).Deleted);
        Assert.Equal("7", await RawAsync(adapter, ns, "k"));
    }

    [Fact]
    public async Task A_request_id_reused_with_other_arguments_is_refused_and_changes_nothing()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var setId = NewRequestId();
        var incrementId = NewRequestId();
        await adapter.SetAsync(ns, "k", Value("\"first\""), 60, setId, None);
        await adapter.IncrementAsync(ns, "c", 5, 0, null, incrementId, None);

        await AssertRefusedAsReusedIdentityAsync(adapter, ns, setId,
            () => adapter.SetAsync(ns, "k", Value("\"second\""), 60, setId, None), ("k", "\"first\""));
        await AssertRefusedAsReusedIdentityAsync(adapter, ns, setId,
            () => adapter.SetAsync(ns, "k", Value("\"first\""), 30, setId, None), ("k", "\"first\""));
        await AssertRefusedAsReusedIdentityAsync(adapter, ns, incrementId,
            () => adapter.IncrementAsync(ns, "c", 6, 0, null, incrementId, None), ("c", "5"));
        Assert.InRange((await adapter.GetAsync(ns, "k", None)).TtlSeconds!.Value, 55, 60);
    }
}
