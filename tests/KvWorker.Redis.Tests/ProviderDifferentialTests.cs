using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using KvWorker.Postgres;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvWorker.Redis.Tests;

/// <summary>
/// The two providers held against each other: seeded random sequences of operations on a small
/// key space (3-4 keys, 1-2 namespaces, small quotas, if_version right and wrong, TTLs, request
/// identities replayed and reused, reads of every kind) run one call at a time on a PostgreSQL
/// store and on a Redis store, and every reply and every event must be the same on both, but for
/// what may differ: remaining TTLs (read a moment apart) within a second, and event times.
/// A failure names the seed and the sequence up to the step that differed; KV_DIFFERENTIAL_SEEDS
/// (<c>17</c>, or a range <c>1-500</c>) runs those seeds instead of the usual ones.
/// </summary>
/// <remarks>
/// A difference the README documents is accounted for:
/// <list type="bullet">
/// <item>A write that the global quota would refuse for the room of expired entries: Redis removes
/// expired entries of any namespace first (and reports them), PostgreSQL only discounts them and
/// leaves them to the purge. The reply is the same, but the namespaces' usage (which counts expired
/// entries not yet purged), the expiry events and, in that step, the threshold events (judged on
/// that usage) are not. After such a step both stores are purged, and what each reported expired,
/// namespace by namespace, must add up to the same; from there on they agree again.</item>
/// </list>
/// Expiry is made exact: a short TTL is 10 ms, and the sequence waits 25 ms after the step that set
/// it, so the entry has expired on both stores before the next step; other TTLs are minutes long.
/// </remarks>
public abstract class ProviderDifferentialTests(RedisFixture redis, PostgresTestDatabase postgres)
{
    private const int DefaultSequences = 40;
    private const int StepsPerSequence = 40;
    private const int MaxIntegerDigits = 6;
    private const double ShortTtlSeconds = 0.01;
    private static readonly TimeSpan PastShortTtl = TimeSpan.FromMilliseconds(25);
    private const double TtlToleranceSeconds = 1.0;

    /// <summary>How many sequences a run holds; the cluster's are slower, so it runs fewer.</summary>
    protected virtual int Sequences => DefaultSequences;

    [Fact]
    public async Task Random_operation_sequences_get_the_same_replies_and_events_from_postgres_and_redis()
    {
        foreach (var seed in Seeds.From("KV_DIFFERENTIAL_SEEDS", 1, Sequences)) await RunSequenceAsync(seed);
    }

    private async Task RunSequenceAsync(int seed)
    {
        var random = new Random(seed);
        var settings = Settings.Draw(random);
        await postgres.ClearAsync();
        var pgEvents = new RecordedEvents();
        var redisEvents = new RecordedEvents();
        var pg = new PostgresKvStoreAdapter(postgres.DataSource,
            new PostgresAdapterOptions { NamespaceQuotaBytes = settings.NamespaceQuota, GlobalQuotaBytes = settings.GlobalQuota },
            new KvLimits { MaxIntegerDigits = MaxIntegerDigits });
        var outbox = new OutboxPublisher(postgres.DataSource, pgEvents, Options.Create(new PostgresAdapterOptions()), NullLogger<OutboxPublisher>.Instance);
        await using var rd = RedisKvStoreAdapter.Connect(
            redis.Options(redis.NewIsolatedPrefix(), settings.NamespaceQuota, settings.GlobalQuota), MaxIntegerDigits, redisEvents, NullLogger.Instance);

        var sequence = new Sequence(random, settings);
        var log = new List<string>();
        var (pgSeen, redisSeen) = (0, 0);
        for (var step = 1; step <= StepsPerSequence; step++)
        {
            var operation = sequence.Next();
            // U+FFFD is written as an escape: printed, it would pass for a character that failed to decode.
            log.Add($"{step,3}. {operation}".Replace("\uFFFD", "\\uFFFD"));
            var pgReply = await ReplyAsync(operation, pg);
            var redisReply = await ReplyAsync(operation, rd);
            if (operation.SetsShortTtl) await Task.Delay(PastShortTtl);
            while (await outbox.PublishBatchAsync(CancellationToken.None) > 0)
            {
            }
            var pgStepEvents = Events(pgEvents, ref pgSeen);
            var redisStepEvents = Events(redisEvents, ref redisSeen);

            void Fail(string what, JsonNode? onPostgres, JsonNode? onRedis) => Assert.Fail(
                $"seed {seed} ({settings}): {what} differ at step {step}\n" +
                $"  PostgreSQL: {onPostgres?.ToJsonString() ?? "(none)"}\n  Redis:      {onRedis?.ToJsonString() ?? "(none)"}\n" +
                $"sequence (replay with KV_DIFFERENTIAL_SEEDS={seed}):\n{string.Join('\n', log)}");

            if (Unexpected(pgReply) || Unexpected(redisReply)) Fail("unexpected faults", pgReply, redisReply);
            if (!Same(pgReply, redisReply)) Fail("replies", pgReply, redisReply);

            if (settings.GlobalQuota is not null && !Same(Expiries(pgStepEvents), Expiries(redisStepEvents)))
            {
                // Redis made room for the global quota by removing expired entries (see remarks): the rest of
                // the step's events must agree; the expiries, once both stores are purged, in their totals.
                if (!Same(Others(pgStepEvents), Others(redisStepEvents))) Fail("events", Others(pgStepEvents), Others(redisStepEvents));
                await pg.PurgeExpiredAsync(new PurgeExpiredEntries(), CancellationToken.None);
                await rd.PurgeExpiredAsync(new PurgeExpiredEntries(), CancellationToken.None);
                while (await outbox.PublishBatchAsync(CancellationToken.None) > 0)
                {
                }
                var pgTotals = ExpiryTotals(pgStepEvents.Concat(Events(pgEvents, ref pgSeen)));
                var redisTotals = ExpiryTotals(redisStepEvents.Concat(Events(redisEvents, ref redisSeen)));
                log.Add("     (both stores purged: Redis reclaimed expired entries for the global quota)");
                if (!Same(pgTotals, redisTotals)) Fail("expired totals after purging both", pgTotals, redisTotals);
            }
            else if (!Same(Array(pgStepEvents), Array(redisStepEvents)))
                Fail("events", Array(pgStepEvents), Array(redisStepEvents));

            sequence.Observe(operation, pgReply);
        }
    }

    /// <summary>What the adapter answered, as the worker would put it on the wire (errors as their error object), event times left out.</summary>
    private static async Task<JsonNode> ReplyAsync(Operation operation, IKvStoreAdapter adapter)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            var reply = await operation.RunAsync(adapter, timeout.Token);
            return WithoutTimes(JsonSerializer.SerializeToNode(reply, reply.GetType())!);
        }
        catch (Exception ex) when (ex is not KvStoreException)
        {
            return new JsonObject { ["unexpected"] = ex.ToString() };
        }
        catch (KvStoreException ex)
        {
            var error = JsonSerializer.SerializeToNode(ex.ToReply())!;
            if (ex is QuotaExceededException quota)
            {
                error["error"]!["quota_bytes"] = quota.QuotaBytes;
                error["error"]!["used_bytes"] = quota.UsedBytes;
                error["error"]!["attempted_bytes"] = quota.AttemptedBytes;
            }
            return error;
        }
    }

    private static bool Unexpected(JsonNode reply) => reply is JsonObject obj && obj.ContainsKey("unexpected");

    /// <summary>The events published since <paramref name="seen"/>, each with its type and without its time.</summary>
    private static List<JsonNode> Events(RecordedEvents events, ref int seen)
    {
        var all = events.All<object>();
        var fresh = all.Skip(seen).Select(e =>
        {
            var node = WithoutTimes(JsonSerializer.SerializeToNode(e, e.GetType())!);
            node["type"] = e.GetType().Name;
            return node;
        }).ToList();
        seen = all.Count;
        // A purge of every namespace visits them in no order the providers share; each namespace's own events keep theirs.
        return [.. fresh.OrderBy(e => (string?)e["namespace"], StringComparer.Ordinal)];
    }

    private static JsonArray Array(IEnumerable<JsonNode> events) => [.. events.Select(e => e.DeepClone())];

    private static JsonArray Expiries(IEnumerable<JsonNode> events) => [.. events.Where(IsExpiry).Select(e => e.DeepClone())];

    private static JsonArray Others(IEnumerable<JsonNode> events) => [.. events.Where(e => !IsExpiry(e) && !IsThreshold(e)).Select(e => e.DeepClone())];

    private static bool IsExpiry(JsonNode e) => (string?)e["type"] == nameof(KvEntriesExpired);

    private static bool IsThreshold(JsonNode e) => (string?)e["type"] == nameof(NamespaceQuotaThresholdReached);

    /// <summary>Per namespace, the entries and bytes the expiry events reported, in namespace order.</summary>
    private static JsonObject ExpiryTotals(IEnumerable<JsonNode> events)
    {
        var totals = new JsonObject();
        foreach (var group in events.Where(IsExpiry).GroupBy(e => (string)e["namespace"]!).OrderBy(g => g.Key, StringComparer.Ordinal))
            totals[group.Key] = new JsonObject
            {
                ["count"] = group.Sum(e => (long)e["count"]!), ["bytes_freed"] = group.Sum(e => (long)e["bytes_freed"]!),
            };
        return totals;
    }

    /// <summary>Drops "at" fields (event times, which each store takes from its own clock), and orders a purge's namespaces by name.</summary>
    private static JsonNode WithoutTimes(JsonNode node)
    {
        switch (node)
        {
            case JsonObject obj:
                obj.Remove("at");
                foreach (var (_, child) in obj.ToList())
                    if (child is not null) WithoutTimes(child);
                if (obj["namespaces"] is JsonArray purged && obj.ContainsKey("ran"))
                {
                    var ordered = purged.Select(p => p!.DeepClone()).OrderBy(p => (string?)p["namespace"], StringComparer.Ordinal).ToList();
                    purged.Clear();
                    foreach (var p in ordered) purged.Add(p);
                }
                break;
            case JsonArray array:
                foreach (var child in array)
                    if (child is not null) WithoutTimes(child);
                break;
        }
        return node;
    }

    /// <summary>Equal JSON, but for ttl_seconds, which may differ by <see cref="TtlToleranceSeconds"/> (read a moment apart).</summary>
    private static bool Same(JsonNode? a, JsonNode? b, string? property = null)
    {
        switch (a, b)
        {
            case (null, null):
                return true;
            case (JsonObject x, JsonObject y):
                return x.Count == y.Count && x.All(p => y.ContainsKey(p.Key) && Same(p.Value, y[p.Key], p.Key));
            case (JsonArray x, JsonArray y):
                return x.Count == y.Count && x.Zip(y).All(pair => Same(pair.First, pair.Second));
            case (JsonValue x, JsonValue y) when property == "ttl_seconds":
                return Math.Abs((double)x - (double)y) <= TtlToleranceSeconds;
            case (JsonValue x, JsonValue y):
                return x.ToJsonString() == y.ToJsonString();
            default:
                return false;
        }
    }

    /// <summary>A sequence's store: its quotas, namespaces and keys.</summary>
    private sealed record Settings(long NamespaceQuota, long? GlobalQuota, string[] Namespaces, string[] Keys)
    {
        /// <summary>Keys whose UTF-8 order differs from their UTF-16 order ("😀" after "\uFFFD" in UTF-8, before it in UTF-16), two sharing a prefix.</summary>
        private static readonly string[] AllKeys = ["a", "ab", "\uFFFD", "😀"];

        public static Settings Draw(Random random)
        {
            var namespaces = random.Next(2) == 0 ? new[] { "n1" } : ["n1", "n2"];
            long quota = random.Next(2) == 0 ? 32 : 48;
            long? global = random.Next(5) < 2 ? (random.Next(3) switch { 0 => 24, 1 => 40, _ => 64 }) : null;
            return new Settings(quota, global, namespaces, AllKeys[..random.Next(3, 5)]);
        }

        public override string ToString() =>
            $"namespace quota {NamespaceQuota}, global quota {GlobalQuota?.ToString(CultureInfo.InvariantCulture) ?? "none"}, " +
            $"namespaces {string.Join(' ', Namespaces)}, keys {string.Join(' ', Keys).Replace("\uFFFD", "\\uFFFD")}, max_integer_digits {MaxIntegerDigits}";
    }

    /// <summary>
    /// Draws operations one by one from its random source. if_version values are drawn right or
    /// wrong from the versions the replies so far have shown (the same on both stores, or the
    /// sequence has stopped), so a seed gives the same sequence on every run.
    /// </summary>
    private sealed class Sequence(Random random, Settings settings)
    {
        private static readonly string[] Integers = ["0", "7", "-3", "41", "123456", "999999", "-999999", "1000000", "-1000000"];
        private static readonly string[] NotIntegers = ["1.5", "1e3", "1E+2", "10.0", "-0", "\"5\"", "true", "null", "[1,2]", "{\"a\":1}"];
        private static readonly long[] Deltas = [1, 1, -1, 7, -250000, 500000, 999999, long.MaxValue, long.MinValue];
        private static readonly long[] InitialValues = [0, 0, 10, -5, 999999, -999999, 1234567];
        private static readonly string[] Prefixes = ["a", "ab", "b", "\uFFFD", "😀"];

        private readonly Dictionary<(string, string), long?> _versions = [];
        private readonly List<string> _messageIds = [];
        private readonly List<Mutation> _identified = [];
        private int _nextMessageId;

        public Operation Next()
        {
            var ns = Pick(settings.Namespaces);
            var key = Pick(settings.Keys);
            var roll = random.Next(100);
            return roll switch
            {
                < 28 => Set(ns, key),
                < 42 => Increment(ns, key),
                < 50 => Delete(ns, key),
                < 58 => Touch(ns, key),
                < 66 when _identified.Count > 0 => new Replay(Pick(_identified)),
                < 74 => new Get(ns, key),
                < 80 => new GetMany(ns, [.. Enumerable.Range(0, random.Next(1, 5)).Select(_ => random.Next(6) == 0 ? "zz" : Pick(settings.Keys))]),
                < 88 => new ListAll(ns, random.Next(2) == 0 ? null : Pick(Prefixes), random.Next(4) switch { 0 => null, var n => n }),
                < 96 => new Usage(ns),
                _ => new Purge(random.Next(2) == 0 ? ns : null),
            };
        }

        /// <summary>Learns the versions a step's reply (the same on both stores) showed.</summary>
        public void Observe(Operation operation, JsonNode reply)
        {
            if (reply is not JsonObject || reply["error"] is not null) return;
            switch (operation)
            {
                case SetMutation or IncrementMutation or TouchMutation when reply["version"] is { } version:
                    var mutation = (Mutation)operation;
                    _versions[(mutation.Ns, mutation.Key)] = mutation.SetsShortTtl ? null : (long)version;
                    break;
                case DeleteMutation delete:
                    _versions[(delete.Ns, delete.Key)] = null;
                    break;
                case Get get:
                    _versions[(get.Ns, get.Key)] = (bool)reply["found"]! ? (long)reply["version"]! : null;
                    break;
            }
        }

        private Operation Set(string ns, string key)
        {
            var json = random.Next(100) switch
            {
                < 40 => "\"" + new string('x', Pick([0, 2, 6, 11, 18, 25])) + "\"",
                < 65 => Pick(Integers),
                < 85 => Pick(NotIntegers),
                _ => Pick(["\"é\"", "\"😀😀\"", "{\"k\":\"ü\"}"]),
            };
            return Identified(new SetMutation(ns, key, json, Ttl(), IfVersion(ns, key), MessageId()));
        }

        private Operation Increment(string ns, string key) =>
            Identified(new IncrementMutation(ns, key, Pick(Deltas), Pick(InitialValues), Ttl(), MessageId()));

        private Operation Delete(string ns, string key) => Identified(new DeleteMutation(ns, key, IfVersion(ns, key), MessageId()));

        private Operation Touch(string ns, string key) =>
            Identified(new TouchMutation(ns, key, random.Next(10) switch { < 4 => null, < 7 => Pick([30.5, 600]), _ => ShortTtlSeconds }, MessageId()));

        private Mutation Identified(Mutation mutation)
        {
            if (mutation.MessageId is not null) _identified.Add(mutation);
            return mutation;
        }

        private double? Ttl() => random.Next(10) switch { < 6 => null, < 8 => Pick([30.5, 600, 3600]), _ => ShortTtlSeconds };

        private long? IfVersion(string ns, string key)
        {
            var known = _versions.GetValueOrDefault((ns, key));
            return random.Next(20) switch
            {
                < 11 => null,
                < 15 => known ?? 0,
                < 17 => 0,
                _ => (known ?? 0) + random.Next(1, 3),
            };
        }

        /// <summary>None, a fresh one, or one used before in any namespace (for another request, or, by chance, the same).</summary>
        private string? MessageId()
        {
            var roll = random.Next(20);
            if (roll < 10) return null;
            if (roll >= 17 && _messageIds.Count > 0) return Pick(_messageIds);
            var id = $"m{++_nextMessageId}";
            _messageIds.Add(id);
            return id;
        }

        private T Pick<T>(IReadOnlyList<T> items) => items[random.Next(items.Count)];
    }

    private abstract record Operation
    {
        public virtual bool SetsShortTtl => false;

        public abstract Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken);

        protected static string TtlText(double? ttl) => ttl is { } t ? $" ttl={t.ToString(CultureInfo.InvariantCulture)}" : "";

        protected static string IdText(string? messageId) => messageId is null ? "" : $" message_id={messageId}";
    }

    /// <summary>A mutation, built once so that a replay sends the very same request and identity.</summary>
    private abstract record Mutation(string Ns, string Key, double? Ttl, string? MessageId) : Operation
    {
        public override bool SetsShortTtl => Ttl == ShortTtlSeconds;

        protected RequestIdentity? Identity(KvOperation operation, IKvRequest request) =>
            MessageId is null ? null : RequestIdentity.Of(MessageId, operation, Ns, Key, request);
    }

    private sealed record SetMutation(string Ns, string Key, string Json, double? Ttl, long? IfVersion, string? MessageId)
        : Mutation(Ns, Key, Ttl, MessageId)
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken)
        {
            var value = StoredValue.From(StoredValue.Parse(Json), maxDepth: 32);
            var request = new KvSet { Namespace = Ns, Key = Key, Value = StoredValue.Parse(value.Json), TtlSeconds = Ttl, IfVersion = IfVersion };
            return await adapter.SetAsync(request, value, Identity(KvOperations.Set, request), cancellationToken);
        }

        public override string ToString() =>
            $"set {Ns}/{Key} = {Json} ({Encoding.UTF8.GetByteCount(Json)} bytes){TtlText(Ttl)}{(IfVersion is { } v ? $" if_version={v}" : "")}{IdText(MessageId)}";
    }

    private sealed record IncrementMutation(string Ns, string Key, long Delta, long InitialValue, double? Ttl, string? MessageId)
        : Mutation(Ns, Key, Ttl, MessageId)
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken)
        {
            var request = new KvIncrement { Namespace = Ns, Key = Key, Delta = Delta, InitialValue = InitialValue, TtlSeconds = Ttl };
            return await adapter.IncrementAsync(request, Identity(KvOperations.Increment, request), cancellationToken);
        }

        public override string ToString() => $"increment {Ns}/{Key} delta={Delta} initial_value={InitialValue}{TtlText(Ttl)}{IdText(MessageId)}";
    }

    private sealed record DeleteMutation(string Ns, string Key, long? IfVersion, string? MessageId) : Mutation(Ns, Key, null, MessageId)
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken)
        {
            var request = new KvDelete { Namespace = Ns, Key = Key, IfVersion = IfVersion };
            return await adapter.DeleteAsync(request, Identity(KvOperations.Delete, request), cancellationToken);
        }

        public override string ToString() => $"delete {Ns}/{Key}{(IfVersion is { } v ? $" if_version={v}" : "")}{IdText(MessageId)}";
    }

    private sealed record TouchMutation(string Ns, string Key, double? Ttl, string? MessageId) : Mutation(Ns, Key, Ttl, MessageId)
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken)
        {
            var request = new KvTouch { Namespace = Ns, Key = Key, TtlSeconds = Ttl };
            return await adapter.TouchAsync(request, Identity(KvOperations.Touch, request), cancellationToken);
        }

        public override string ToString() => $"touch {Ns}/{Key} ttl={Ttl?.ToString(CultureInfo.InvariantCulture) ?? "null"}{IdText(MessageId)}";
    }

    /// <summary>A mutation sent again with its message_id and body, as a client's retry or a redelivery: it must get its first answer.</summary>
    private sealed record Replay(Mutation Of) : Operation
    {
        /// <summary>Also a replay: one whose first attempt was refused (and so not recorded) is applied now.</summary>
        public override bool SetsShortTtl => Of.SetsShortTtl;

        public override Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken) => Of.RunAsync(adapter, cancellationToken);

        public override string ToString() => $"again: {Of}";
    }

    private sealed record Get(string Ns, string Key) : Operation
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken) =>
            await adapter.GetAsync(new KvGet { Namespace = Ns, Key = Key }, cancellationToken);

        public override string ToString() => $"get {Ns}/{Key}";
    }

    private sealed record GetMany(string Ns, string[] Keys) : Operation
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken) =>
            await adapter.GetManyAsync(new KvGetMany { Namespace = Ns, Keys = Keys }, cancellationToken);

        public override string ToString() => $"get_many {Ns} [{string.Join(' ', Keys)}]";
    }

    /// <summary>Every page of a listing, each asked for with the cursor the page before handed out.</summary>
    private sealed record ListAll(string Ns, string? Prefix, int? Limit) : Operation
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken)
        {
            var pages = new List<KvListResult>();
            string? cursor = null;
            do
            {
                var page = await adapter.ListAsync(new KvList { Namespace = Ns, Prefix = Prefix, Limit = Limit, Cursor = cursor }, cancellationToken);
                pages.Add(page);
                cursor = page.NextCursor;
            }
            while (cursor is not null && pages.Count < 10);
            return pages;
        }

        public override string ToString() => $"list {Ns}{(Prefix is null ? "" : $" prefix={Prefix}")}{(Limit is { } l ? $" limit={l}" : "")} (every page)";
    }

    private sealed record Usage(string Ns) : Operation
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken) =>
            await adapter.UsageAsync(new KvUsage { Namespace = Ns }, cancellationToken);

        public override string ToString() => $"usage {Ns}";
    }

    private sealed record Purge(string? Ns) : Operation
    {
        public override async Task<object> RunAsync(IKvStoreAdapter adapter, CancellationToken cancellationToken) =>
            await adapter.PurgeExpiredAsync(new PurgeExpiredEntries { Namespace = Ns }, cancellationToken);

        public override string ToString() => $"purge {Ns ?? "(all namespaces)"}";
    }
}

/// <summary>
/// The differential tests run on their own, after the others: their thousands of calls would
/// otherwise compete with the timing of the purge-budget and fault tests on a small machine.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProviderDifferentialCollection
{
    public const string Name = "provider differential";
}

/// <summary>PostgreSQL against a standalone Redis (KV_TEST_REDIS).</summary>
[Collection(ProviderDifferentialCollection.Name)]
public sealed class RedisProviderDifferentialTests(RedisFixture redis, PostgresTestDatabase postgres)
    : ProviderDifferentialTests(redis, postgres), IClassFixture<RedisFixture>, IClassFixture<PostgresTestDatabase>;

/// <summary>PostgreSQL against a Redis Cluster of three primaries (KV_TEST_REDIS_CLUSTER), with fewer sequences.</summary>
[Collection(ProviderDifferentialCollection.Name)]
public sealed class RedisClusterProviderDifferentialTests(RedisClusterFixture redis, PostgresTestDatabase postgres)
    : ProviderDifferentialTests(redis, postgres), IClassFixture<RedisClusterFixture>, IClassFixture<PostgresTestDatabase>
{
    protected override int Sequences => 15;
}
