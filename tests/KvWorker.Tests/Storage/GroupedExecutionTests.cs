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

    /// <summary>
    /// Where a mix runs: the adapter, the mix's namespace and a second one, and the prefix of its
    /// request ids (one per side, so the two sides' identities never meet).
    /// </summary>
    public sealed record Side(IKvStoreAdapter Adapter, NpgsqlDataSource DataSource, string Ns, string Other, string Ids);

    /// <summary>One command of a mix: it runs on a side and describes its reply.</summary>
    public delegate Task<object> Step(Side side);

    private static Step Set(string key, string json, double? ttl = null, long? ifVersion = null, string? id = null) =>
        async s => await s.Adapter.SetAsync(s.Ns, key, Value(json), ttl, id is null ? null : s.Ids + id, None, ifVersion);
    private static Step Increment(string key, long delta = 1, double? ttl = null, string? id = null) =>
        async s => await s.Adapter.IncrementAsync(s.Ns, key, delta, 0, ttl, id is null ? null : s.Ids + id, None);
    private static Step Delete(string key, long? ifVersion = null, string? id = null) =>
        async s => await s.Adapter.DeleteAsync(s.Ns, key, id is null ? null : s.Ids + id, None, ifVersion);
    private static Step Touch(string key, double? ttl, string? id = null) =>
        async s => await s.Adapter.TouchAsync(s.Ns, key, ttl, id is null ? null : s.Ids + id, None);
    private static Step Get(string key) => async s => await s.Adapter.GetAsync(s.Ns, key, None);

    /// <summary>The step on the side's second namespace.</summary>
    private static Step InOther(Step step) => s => step(s with { Ns = s.Other });

    /// <summary>Moves a stored entry's expiry into the past, as if its TTL had run out; describes how many rows it changed.</summary>
    private static Step Expire(string key) => async s =>
    {
        const string sql = "UPDATE kv_entries SET expires_at = now() - interval '1 second' WHERE namespace = $1 AND key = $2";
        await using var command = s.DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = s.Ns });
        command.Parameters.Add(new NpgsqlParameter { Value = key });
        return new { expired = await command.ExecuteNonQueryAsync() };
    };

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

    /// <summary>
    /// Mixes under a global quota, which expired entries anywhere do not count against: a group
    /// discounts those it did not read, less those a reclaim of its own has deleted meanwhile.
    /// </summary>
    public static TheoryData<string, long, Step[], Step[]> UnderAGlobalQuota => new()
    {
        {
            // The reclaim deletes "x" for the first write, refused by the global quota all the same; the second
            // write may not count "x" as free again (alone, it no longer finds it).
            "a write after a reclaim, against a global quota that the reclaimed entry no longer eases",
            60, [Set("x", Bytes(30)), Expire("x")], [Set("n", Bytes(100)), Set("b", Bytes(85)), Get("b")]
        },
        {
            "writes admitted by the global quota only with an expired entry in another namespace discounted, and one refused",
            100, [InOther(Set("x", Bytes(50))), InOther(Expire("x"))], [Set("a", Bytes(60)), Set("b", Bytes(30)), InOther(Set("y", Bytes(20))), Get("b")]
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

    [Theory]
    [MemberData(nameof(UnderAGlobalQuota))]
    public async Task A_group_under_a_global_quota_gives_what_running_them_one_by_one_gives(string mix, long globalQuotaBytes, Step[] before, Step[] steps)
    {
        // A database of its own: each side empties it, since the global counter spans namespaces.
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        await AssertGroupedAsSequentialAsync(isolated, globalQuotaBytes, mix, before, steps);
    }

    /// <summary>
    /// Random mixes over a few keys in one or two namespaces: sets, increments, deletes, touches and
    /// gets, with if_version conditions, TTLs, entries stored and expired before the group, values
    /// that reach the namespace quota (and in some mixes a global one) and request ids repeated or
    /// reused. Seeds 1 to 200 unless KV_TEST_GROUPED_SEEDS names others ("17", or "1-5000" to
    /// search further); a failure names its seed and prints the mix, and the smallest part of it
    /// found to fail too, as calls that <see cref="Mixes"/> takes.
    /// </summary>
    [Fact]
    public async Task Random_groups_give_each_command_what_running_them_one_by_one_gives()
    {
        // A database of its own: mixes with a global quota empty it.
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        foreach (var seed in Seeds.From("KV_TEST_GROUPED_SEEDS", 1, 200))
        {
            var mix = RandomMix.Generate(seed);
            if (await FailureAsync(isolated, mix) is not { } failure) continue;
            var smallest = await ShrinkAsync(isolated, mix);
            Assert.Fail($"seed {seed} (KV_TEST_GROUPED_SEEDS={seed} replays it): grouped and one by one differ\n{mix}\n" +
                        $"smallest failing part found:\n{smallest}\n{(await FailureAsync(isolated, smallest))?.Message ?? failure.Message}");
        }
    }

    private static async Task<Exception?> FailureAsync(DatabaseFixture database, RandomMix mix)
    {
        try
        {
            await AssertGroupedAsSequentialAsync(database, mix.GlobalQuotaBytes, $"seed {mix.Seed}",
                [.. mix.Before.Select(c => c.Step)], [.. mix.Steps.Select(c => c.Step)]);
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }

    /// <summary>Drops commands one at a time for as long as what is left still fails.</summary>
    private static async Task<RandomMix> ShrinkAsync(DatabaseFixture database, RandomMix mix)
    {
        for (var i = 0; i < mix.Before.Length + mix.Steps.Length;)
        {
            var smaller = i < mix.Before.Length
                ? mix with { Before = [.. mix.Before.Where((_, j) => j != i)] }
                : mix with { Steps = [.. mix.Steps.Where((_, j) => j != i - mix.Before.Length)] };
            if (smaller.Steps.Length > 0 && await FailureAsync(database, smaller) is not null) mix = smaller;
            else i++;
        }
        return mix;
    }

    /// <summary>A command of a random mix: the step, and the call that makes it, as <see cref="Mixes"/> would write it.</summary>
    private sealed record Command(string Code, Step Step)
    {
        public override string ToString() => Code;
    }

    private sealed record RandomMix(int Seed, long? GlobalQuotaBytes, Command[] Before, Command[] Steps)
    {
        public override string ToString() =>
            $"seed {Seed}, namespace quota 100{(GlobalQuotaBytes is { } global ? $", global quota {global}" : "")}\n" +
            $"before: [{string.Join(", ", Before.Select(c => c.Code))}]\n" +
            $"steps: [{string.Join(", ", Steps.Select(c => c.Code))}]";

        /// <summary>Values: integers (one at the 20-digit limit), a fraction, a text and a boolean, and strings of sizes around the quota of 100.</summary>
        private static readonly (string Json, string Code)[] Values =
        [
            ("1", "\"1\""), ("-5", "\"-5\""), ("99999999999999999999", "\"99999999999999999999\""), ("1.5", "\"1.5\""),
            ("\"7\"", "\"\\\"7\\\"\""), ("true", "\"true\""),
            .. new[] { 2, 12, 30, 45, 60, 85, 99, 100, 101 }.Select(n => (GroupedExecutionTests.Bytes(n), $"Bytes({n})")),
        ];

        private static readonly long[] Deltas = [1, -1, 7, -20, 9_000_000_000_000_000_000];
        private static readonly string[] MessageIds = ["m1", "m2", "m3"];

        public static RandomMix Generate(int seed)
        {
            var random = new Random(seed);
            T Pick<T>(params T[] choices) => choices[random.Next(choices.Length)];
            bool Chance(int percent) => random.Next(100) < percent;
            string Text(double? number) => number?.ToString(CultureInfo.InvariantCulture) ?? "null";

            long? global = Chance(30) ? Pick(40L, 80L, 120L, 160L) : null;
            (bool Other, string Key)[] keys = Chance(35)
                ? [(false, "a"), (false, "b"), (false, "n"), (true, "a"), (true, "b")]
                : [(false, "a"), (false, "b"), (false, "c"), (false, "n")];
            string? Id() => Chance(30) ? Pick(MessageIds) : null;
            Command Placed((bool Other, string Key) key, Command command) =>
                key.Other ? new Command($"InOther({command.Code})", InOther(command.Step)) : command;

            Command SetCommand((bool Other, string Key) key, double? ttl, long? ifVersion)
            {
                var (json, code) = Pick(Values);
                var id = Id();
                var args = $"\"{key.Key}\", {code}" + (ttl is null ? "" : $", ttl: {Text(ttl)}") +
                           (ifVersion is null ? "" : $", ifVersion: {ifVersion}") + (id is null ? "" : $", id: \"{id}\"");
                return Placed(key, new Command($"Set({args})", Set(key.Key, json, ttl, ifVersion, id)));
            }
            Command IncrementCommand((bool Other, string Key) key, double? ttl)
            {
                var delta = Pick(Deltas);
                var id = Id();
                var args = $"\"{key.Key}\", {delta}" + (ttl is null ? "" : $", ttl: {Text(ttl)}") + (id is null ? "" : $", id: \"{id}\"");
                return Placed(key, new Command($"Increment({args})", Increment(key.Key, delta, ttl, id)));
            }
            long? IfVersion() => random.Next(10) switch { < 6 => null, 6 => 0, _ => random.Next(1, 9) };

            // Before the group, one by one: entries stored, deleted and touched, some with request ids
            // (so the group replays recorded answers), some then expired. Key "x" only here: the group
            // does not read it, so its expired entry is one that a reclaim or the global quota counts unread.
            var before = new List<Command>();
            (bool Other, string Key)[] beforeKeys = [.. keys, .. keys.Select(k => k.Other).Distinct().Select(other => (other, "x"))];
            for (var i = random.Next(6); i > 0; i--)
            {
                var key = Pick(beforeKeys);
                before.Add(random.Next(10) switch
                {
                    < 6 => SetCommand(key, Pick<double?>(null, 600.5), IfVersion()),
                    < 8 => IncrementCommand(key, Pick<double?>(null, 600.5)),
                    8 => DeleteCommand(key),
                    _ => TouchCommand(key),
                });
                if (Chance(40)) before.Add(Placed(key, new Command($"Expire(\"{key.Key}\")", Expire(key.Key))));
            }

            var steps = new List<Command>();
            for (var i = random.Next(3, 15); i > 0; i--)
            {
                var key = Pick(keys);
                var withIds = before.Concat(steps).Where(c => c.Code.Contains("id: ", StringComparison.Ordinal)).ToList();
                var roll = random.Next(100);
                steps.Add(roll switch
                {
                    // The same request again: a replay, within the group or of an earlier one.
                    < 15 when withIds.Count > 0 => withIds[random.Next(withIds.Count)],
                    < 35 => SetCommand(key, Pick<double?>(null, null, null, 30.5, 600.5), IfVersion()),
                    < 55 => IncrementCommand(key, Pick<double?>(null, null, null, 30.5)),
                    < 68 => DeleteCommand(key),
                    < 78 => TouchCommand(key),
                    _ => Placed(key, new Command($"Get(\"{key.Key}\")", Get(key.Key))),
                });
            }
            return new RandomMix(seed, global, [.. before], [.. steps]);

            Command DeleteCommand((bool Other, string Key) key)
            {
                var (ifVersion, id) = (IfVersion(), Id());
                var args = $"\"{key.Key}\"" + (ifVersion is null ? "" : $", ifVersion: {ifVersion}") + (id is null ? "" : $", id: \"{id}\"");
                return Placed(key, new Command($"Delete({args})", Delete(key.Key, ifVersion, id)));
            }
            Command TouchCommand((bool Other, string Key) key)
            {
                var (ttl, id) = (Pick<double?>(null, 600.5), Id());
                var args = $"\"{key.Key}\", {Text(ttl)}" + (id is null ? "" : $", id: \"{id}\"");
                return Placed(key, new Command($"Touch({args})", Touch(key.Key, ttl, id)));
            }
        }
    }

    private Task AssertGroupedAsSequentialAsync(string mix, Step[] before, Step[] steps) =>
        AssertGroupedAsSequentialAsync(db, globalQuotaBytes: null, mix, before, steps);

    /// <summary>
    /// Runs <paramref name="before"/> then <paramref name="steps"/> one by one on one side, and
    /// <paramref name="before"/> one by one then <paramref name="steps"/> as one group on the other,
    /// and wants the same replies, stored state and events.
    /// </summary>
    private static async Task AssertGroupedAsSequentialAsync(DatabaseFixture database, long? globalQuotaBytes, string mix, Step[] before, Step[] steps)
    {
        var sequential = await RunAsync(database, globalQuotaBytes, before, steps, grouped: false);
        var grouped = await RunAsync(database, globalQuotaBytes, before, steps, grouped: true);
        // The mix's name heads both sides, so a failure says which mix differed.
        AssertSameWithinTtls(string.Join("\n", sequential.Replies.Prepend(mix)), string.Join("\n", grouped.Replies.Prepend(mix)));
        AssertSameWithinTtls(sequential.State, grouped.State);
        Assert.Equal(sequential.Events, grouped.Events);
    }

    private sealed record Run(List<string> Replies, string State, string Events);

    /// <summary>
    /// One side of a mix, in namespaces of its own. With a global quota the side starts from an
    /// empty database (one of the test's own): the global counter and the expired entries it
    /// discounts span all namespaces, so the two sides must not see each other's.
    /// </summary>
    private static async Task<Run> RunAsync(DatabaseFixture database, long? globalQuotaBytes, Step[] before, Step[] steps, bool grouped)
    {
        if (globalQuotaBytes is not null) await EmptyAsync(database.DataSource);
        // 20 digits, the least allowed, so increments can pass the limit with values within the quota.
        var limits = new KvLimits { MaxIntegerDigits = 20 };
        var options = new PostgresAdapterOptions { NamespaceQuotaBytes = 100, GlobalQuotaBytes = globalQuotaBytes };
        if (grouped) options.GroupCommit = new GroupCommitOptions { Transactions = 1, ReadTransactions = 0 };
        var adapter = new PostgresKvStoreAdapter(database.DataSource, options, limits);
        var side = new Side(adapter, database.DataSource, NewNamespace(), NewNamespace(), Ids: Guid.NewGuid().ToString("N"));
        var replies = new List<string>();
        foreach (var step in before) replies.Add("before: " + await DescribeAsync(step(side), side));

        if (!grouped)
        {
            // One by one: each awaited before the next is sent.
            foreach (var step in steps) replies.Add(await DescribeAsync(step(side), side));
        }
        else
        {
            // Together: the only transaction slot waits on a lock while all of them gather behind it.
            var groupsBefore = adapter.Groups;
            var blocked = NewNamespace();
            var holder = await database.LockNamespaceAsync(blocked);
            await using (holder.Connection!)
            {
                // A delete of a missing key: it waits for the lock like any write but changes no counter, the global one included.
                var first = adapter.DeleteAsync(blocked, "k", null, None);
                await database.WaitForALockWaiterAsync();
                var pending = steps.Select(step => DescribeAsync(step(side), side)).ToList();
                await holder.CommitAsync();
                await first;
                replies.AddRange(await Task.WhenAll(pending));
            }
            Assert.Equal(2, adapter.Groups - groupsBefore);
        }

        var state = await StateAsync(database.DataSource, side.Ns) + " || " + await StateAsync(database.DataSource, side.Other);
        if (globalQuotaBytes is not null) state += " || global " + await GlobalUsageAsync(database.DataSource);
        var events = await EventsAsync(database.DataSource, side.Ns) + " || " + await EventsAsync(database.DataSource, side.Other);
        return new Run(replies, state, events);
    }

    private static readonly JsonSerializerOptions Compact = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>The reply as text, without its namespaces and the prefix of its request ids, so two sides' replies compare.</summary>
    private static async Task<string> DescribeAsync(Task<object> reply, Side side)
    {
        try
        {
            var result = JsonSerializer.SerializeToNode(await reply, Compact)!.AsObject();
            result.Remove("namespace");
            if (result["ttl_seconds"] is { } ttl) result["ttl_seconds"] = Math.Round(ttl.GetValue<double>(), 3);
            return result.ToJsonString();
        }
        catch (KvStoreException ex)
        {
            var error = ex.ToReply().Error;
            return $"{error.Code} current_version={error.CurrentVersion} {error.Message.Replace(side.Other, "ns2", StringComparison.Ordinal).Replace(side.Ns, "ns", StringComparison.Ordinal).Replace(side.Ids, "", StringComparison.Ordinal)}";
        }
    }

    private static readonly Regex RemainingTtl = new(@"(?<=ttl |""ttl_seconds"":)-?\d+(\.\d+)?", RegexOptions.CultureInvariant);

    /// <summary>
    /// Equal replies or states, whose remaining TTLs may differ by the time between the two sides'
    /// writes and reads (a busy machine stretches it past a second), so they are compared within 5 s.
    /// </summary>
    private static void AssertSameWithinTtls(string sequential, string grouped)
    {
        Assert.Equal(RemainingTtl.Replace(sequential, "~"), RemainingTtl.Replace(grouped, "~"));
        var pairs = RemainingTtl.Matches(sequential).Zip(RemainingTtl.Matches(grouped),
            (s, g) => (Sequential: double.Parse(s.Value, CultureInfo.InvariantCulture), Grouped: double.Parse(g.Value, CultureInfo.InvariantCulture)));
        foreach (var (sequentialTtl, groupedTtl) in pairs)
            Assert.InRange(Math.Abs(groupedTtl - sequentialTtl), 0, 5);
    }

    private static async Task<string> StateAsync(NpgsqlDataSource dataSource, string ns)
    {
        const string sql = """
            SELECT coalesce(string_agg(key || '=' || value || ' v' || version || ' ttl ' || coalesce(round(extract(epoch FROM expires_at - now()), 3)::text, '-'), '; ' ORDER BY key), '')
                   || ' | ' || coalesce((SELECT used_bytes || ' bytes, ' || entry_count || ' entries, last version ' || last_version
                                          FROM kv_namespace_usage WHERE namespace = $1), 'no counters')
              FROM kv_entries WHERE namespace = $1
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<string> EventsAsync(NpgsqlDataSource dataSource, string ns)
    {
        const string sql = """
            SELECT coalesce(string_agg(event_type || ' ' || (payload::jsonb - 'namespace' - 'at')::text, '; ' ORDER BY id), '')
              FROM kv_outbox WHERE payload::json->>'namespace' = $1
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<string> GlobalUsageAsync(NpgsqlDataSource dataSource)
    {
        const string sql = "SELECT used_bytes || ' bytes, ' || entry_count || ' entries' FROM kv_global_usage";
        await using var command = dataSource.CreateCommand(sql);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Removes every entry, counter, identity and event, and zeroes the global counter.</summary>
    private static async Task EmptyAsync(NpgsqlDataSource dataSource)
    {
        const string sql = """
            TRUNCATE kv_entries, kv_namespace_usage, kv_processed_requests, kv_outbox;
            UPDATE kv_global_usage SET used_bytes = 0, entry_count = 0;
            """;
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}
