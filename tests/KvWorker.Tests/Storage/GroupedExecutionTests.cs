using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>
/// A group's set-based execution gives every command exactly the outcome that
/// running the commands one after another, in arrival order, gives: the same
/// replies (results or errors) and the same stored state.
/// </summary>
[Collection(DatabaseCollection.Name)]
public sealed class GroupedExecutionTests(DatabaseFixture db)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");
    private static StoredValue Value(string json) => StoredValue.From(JsonDocument.Parse(json).RootElement.Clone(), maxDepth: 32);

    /// <summary>One command of a mix: it runs against an adapter and namespace and describes its reply.</summary>
    public delegate Task<object> Step(IKvStoreAdapter adapter, string ns);

    private static Step Set(string key, string json, double? ttl = null, long? ifVersion = null, string? id = null) =>
        async (a, ns) => await a.SetAsync(ns, key, Value(json), ttl, id is null ? null : ns + id, None, ifVersion);
    private static Step Increment(string key, long delta = 1, double? ttl = null, string? id = null) =>
        async (a, ns) => await a.IncrementAsync(ns, key, delta, 0, ttl, id is null ? null : ns + id, None);
    private static Step Delete(string key, long? ifVersion = null, string? id = null) =>
        async (a, ns) => await a.DeleteAsync(ns, key, id is null ? null : ns + id, None, ifVersion);
    private static Step Touch(string key, double? ttl) => async (a, ns) => await a.TouchAsync(ns, key, ttl, null, None);
    private static Step Get(string key) => async (a, ns) => await a.GetAsync(ns, key, None);

    public static TheoryData<string, Step[]> Mixes => new()
    {
        { "set then increment", [Set("k", "1"), Increment("k", 5), Get("k")] },
        { "increment twice", [Increment("c", 2), Increment("c", 3), Get("c")] },
        { "delete then set", [Set("k", "\"old\""), Delete("k"), Set("k", "\"new\""), Get("k"), Delete("gone")] },
        { "a quota rejection between two accepted writes", [Set("a", Bytes(40)), Set("b", Bytes(70)), Set("c", Bytes(50)), Get("b"), Get("c")] },
        { "an overwrite freeing room for a write refused before it", [Set("a", Bytes(90)), Set("b", Bytes(20)), Set("a", Bytes(10)), Set("b", Bytes(20))] },
        { "increments of a text and past the quota", [Set("t", "\"text\""), Increment("t"), Set("big", Bytes(99)), Increment("n", 1_000_000)] },
        { "compare-and-set on versions made in the group", [Set("k", "1", ifVersion: 0), Set("k", "2", ifVersion: 0), Set("k", "3", ifVersion: 1), Set("k", "4", ifVersion: 1), Delete("k", ifVersion: 2), Get("k")] },
        { "touch after writes and of a missing key", [Set("k", "1", ttl: 30), Touch("k", 600), Touch("missing", 5), Increment("k"), Get("k")] },
        { "a repeated message id and a reused one", [Increment("c", 1, id: "m1"), Increment("c", 1, id: "m1"), Increment("d", 1, id: "m1"), Get("c")] },
        { "threshold crossings up, down and up again", [Set("a", Bytes(80)), Delete("a"), Set("b", Bytes(85)), Set("c", Bytes(15))] },
    };

    /// <summary>A JSON string value of exactly <paramref name="bytes"/> bytes.</summary>
    private static string Bytes(int bytes) => $"\"{new string('x', bytes - 2)}\"";

    /// <summary>
    /// Replays of requests applied in earlier groups, beside new ones: a group reads request
    /// identities only when it suspects a replay, so these take its two other paths (a replay
    /// refused on its own terms, and one applied again whose identity's INSERT fails the group).
    /// </summary>
    public static TheoryData<string, Step[], Step[]> Replays => new()
    {
        {
            "replays of a conditional set, an increment and a delete, with new writes and a reused id",
            [Set("k", "1", id: "s1"), Set("k", "2", ifVersion: 1, id: "s2"), Increment("c", 1, id: "i1"), Set("x", "1"), Delete("x", id: "d1")],
            [Set("k", "2", ifVersion: 1, id: "s2"), Increment("c", 1, id: "i1"), Increment("c", 5), Delete("x", id: "d1"), Set("x", "3"), Increment("e", 1, id: "s1"), Get("c"), Get("k")]
        },
        { "only replays", [Increment("c", 1, id: "i1"), Set("k", "1", id: "s1")], [Set("k", "1", id: "s1"), Increment("c", 1, id: "i1"), Get("c")] },
    };

    /// <summary>
    /// Mixes on rows that earlier groups stored: the group inserts only the rows it finds missing
    /// and updates or deletes the ones it read, including an expired one and a key deleted and
    /// written again within the group; a key written and deleted within it never reaches the table.
    /// </summary>
    public static TheoryData<string, Step[], Step[]> OnStoredRows => new()
    {
        {
            "overwrites, deletes and rewrites of stored keys, an expired one among them, and a key that comes and goes",
            [Set("a", "1"), Set("b", "2"), Increment("c"), Set("old", "\"expired\"", ttl: 0.001)],
            [Set("a", "10"), Delete("b"), Set("b", "20"), Increment("c"), Delete("a"), Set("new", "1"), Delete("new"), Set("old", "2"), Get("a"), Get("b"), Get("old")]
        },
        {
            // The refused write leaves its own expired entry; the next write reclaims it, as it would alone.
            "a write refused beside its own expired entry, then one that its reclaim makes room for",
            [Set("live", Bytes(55)), Set("old", Bytes(40), ttl: 0.001)],
            [Set("old", Bytes(50)), Set("k", Bytes(10)), Get("k"), Get("old")]
        },
    };

    [Theory]
    [MemberData(nameof(Mixes))]
    public Task A_group_gives_each_command_what_running_them_one_by_one_gives(string mix, Step[] steps) =>
        AssertGroupedAsSequentialAsync(mix, [], steps);

    [Theory]
    [MemberData(nameof(Replays))]
    public Task A_group_with_replays_of_earlier_requests_gives_what_running_them_one_by_one_gives(string mix, Step[] before, Step[] steps) =>
        AssertGroupedAsSequentialAsync(mix, before, steps);

    [Theory]
    [MemberData(nameof(OnStoredRows))]
    public Task A_group_on_rows_stored_before_gives_what_running_them_one_by_one_gives(string mix, Step[] before, Step[] steps) =>
        AssertGroupedAsSequentialAsync(mix, before, steps);

    /// <summary>Runs <paramref name="before"/> one by one on both sides, then <paramref name="steps"/> one by one on one side and as one group on the other.</summary>
    private async Task AssertGroupedAsSequentialAsync(string mix, Step[] before, Step[] steps)
    {
        var options = new PostgresAdapterOptions { NamespaceQuotaBytes = 100, GroupCommit = new GroupCommitOptions { Transactions = 1, ReadTransactions = 0 } };
        var grouped = new PostgresKvStoreAdapter(db.DataSource, options, new KvLimits());
        var sequential = db.Adapter(namespaceQuotaBytes: 100);
        var (groupNs, sequentialNs, blocked) = (NewNamespace(), NewNamespace(), NewNamespace());
        foreach (var step in before)
            Assert.Equal(await DescribeAsync(step(sequential, sequentialNs), sequentialNs), await DescribeAsync(step(grouped, groupNs), groupNs));

        // One by one: each awaited before the next is sent.
        var expected = new List<string>();
        foreach (var step in steps) expected.Add(await DescribeAsync(step(sequential, sequentialNs), sequentialNs));

        // Together: the only transaction slot waits on a lock while all of them gather behind it.
        var groupsBefore = grouped.Groups;
        await using (var holder = await db.LockNamespaceAsync(blocked))
        {
            var first = grouped.SetAsync(blocked, "k", Value("1"), null, null, None);
            await db.WaitForALockWaiterAsync();
            var replies = steps.Select(step => DescribeAsync(step(grouped, groupNs), groupNs)).ToList();
            await holder.CommitAsync();
            await first;
            // The mix's name heads both sides, so a failure says which mix differed.
            Assert.Equal(string.Join("\n", expected.Prepend(mix)), string.Join("\n", (await Task.WhenAll(replies)).Prepend(mix)));
        }
        Assert.Equal(2, grouped.Groups - groupsBefore);
        AssertSameState(await StateAsync(sequentialNs), await StateAsync(groupNs));
        Assert.Equal(await EventsAsync(sequentialNs), await EventsAsync(groupNs));
    }

    private static readonly JsonSerializerOptions Compact = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>The reply as text, without its namespace and with TTLs rounded up to whole seconds (a read a moment after a write still shows the TTL written), so two namespaces' replies compare.</summary>
    private static async Task<string> DescribeAsync(Task<object> reply, string ns)
    {
        try
        {
            var result = JsonSerializer.SerializeToNode(await reply, Compact)!.AsObject();
            result.Remove("namespace");
            if (result["ttl_seconds"] is { } ttl) result["ttl_seconds"] = Math.Ceiling(ttl.GetValue<double>());
            return result.ToJsonString();
        }
        catch (KvStoreException ex)
        {
            var error = ex.ToReply().Error;
            return $"{error.Code} current_version={error.CurrentVersion} {error.Message.Replace(ns, "ns", StringComparison.Ordinal)}";
        }
    }

    private static readonly Regex RemainingTtl = new(@"ttl (-?\d+(\.\d+)?)", RegexOptions.CultureInvariant);

    /// <summary>
    /// Equal states, whose remaining TTLs may differ by the time between the two sides' writes
    /// (the sequential side writes first), so they are compared within 5 s rather than to the second.
    /// </summary>
    private static void AssertSameState(string sequential, string grouped)
    {
        Assert.Equal(RemainingTtl.Replace(sequential, "ttl ~"), RemainingTtl.Replace(grouped, "ttl ~"));
        var pairs = RemainingTtl.Matches(sequential).Zip(RemainingTtl.Matches(grouped),
            (s, g) => (Sequential: double.Parse(s.Groups[1].Value, CultureInfo.InvariantCulture), Grouped: double.Parse(g.Groups[1].Value, CultureInfo.InvariantCulture)));
        foreach (var (sequentialTtl, groupedTtl) in pairs)
            Assert.InRange(Math.Abs(groupedTtl - sequentialTtl), 0, 5);
    }

    private async Task<string> StateAsync(string ns)
    {
        const string sql = """
            SELECT coalesce(string_agg(key || '=' || value || ' v' || version || ' ttl ' || coalesce(round(extract(epoch FROM expires_at - now()), 3)::text, '-'), '; ' ORDER BY key), '')
                   || ' | ' || coalesce((SELECT used_bytes || ' bytes, ' || entry_count || ' entries, last version ' || last_version
                                          FROM kv_namespace_usage WHERE namespace = $1), 'no counters')
              FROM kv_entries WHERE namespace = $1
            """;
        await using var command = db.DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private async Task<string> EventsAsync(string ns)
    {
        const string sql = """
            SELECT coalesce(string_agg(event_type || ' ' || (payload::jsonb - 'namespace' - 'at')::text, '; ' ORDER BY id), '')
              FROM kv_outbox WHERE payload::json->>'namespace' = $1
            """;
        await using var command = db.DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        return (string)(await command.ExecuteScalarAsync())!;
    }
}
