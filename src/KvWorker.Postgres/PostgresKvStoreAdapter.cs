using System.Numerics;
using KvWorker.Contracts;
using KvWorker.Storage;
using Npgsql;
using NpgsqlTypes;

namespace KvWorker.Postgres;

/// <summary>
/// The built-in <c>postgres</c> provider. Gets and mutations go through
/// <see cref="GroupCommit"/>: concurrent commands share a transaction, read and
/// written set-based, each with its own outcome; gets in groups of their own
/// unless <c>group_commit:read_transactions</c> is 0. Listing, bulk reads and
/// usage are one statement each. Time is always the database's <c>now()</c>.
/// </summary>
public sealed class PostgresKvStoreAdapter : IKvStoreAdapter
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresAdapterOptions _options;
    private readonly KvLimits _limits;
    private readonly GroupCommit _writes;
    private readonly GroupCommit _reads;
    private readonly PostgresPurge _purge;

    public PostgresKvStoreAdapter(NpgsqlDataSource dataSource, PostgresAdapterOptions options, KvLimits limits)
    {
        _dataSource = dataSource;
        _options = options;
        _limits = limits;
        var settings = new GroupSettings(options.NamespaceQuotaBytes, options.GlobalQuotaBytes, options.EffectiveQuotaThresholds,
            limits.MaxIntegerDigits, options.RequireSynchronousReplication);
        _writes = new GroupCommit(dataSource, settings, options.GroupCommit.MaxCommands, options.GroupCommit.Transactions);
        _reads = options.GroupCommit.ReadTransactions > 0
            ? new GroupCommit(dataSource, settings, options.GroupCommit.MaxCommands, options.GroupCommit.ReadTransactions)
            : _writes;
        _purge = new PostgresPurge(dataSource, options);
    }

    /// <summary>Transactions this adapter has run its commands in (each holding one or more).</summary>
    public long Groups => _writes.Groups + (_reads == _writes ? 0 : _reads.Groups);

    public async Task<KvGetResult> GetAsync(KvGet request, CancellationToken cancellationToken)
    {
        var outcome = await _reads.RunAsync(new GetCommand(request.Namespace, request.Key), cancellationToken);
        return Found(request.Namespace, request.Key, outcome.Entry);
    }

    public async Task<KvSetResult> SetAsync(KvSet request, StoredValue value, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        var outcome = await RunAsync(new SetCommand(ns, key, value, request.TtlSeconds, request.IfVersion, identity), request.IfVersion, cancellationToken);
        return new KvSetResult
        {
            Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = request.TtlSeconds, Version = outcome.Entry!.Version,
        };
    }

    public async Task<KvDeleteResult> DeleteAsync(KvDelete request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var outcome = await RunAsync(new DeleteCommand(request.Namespace, request.Key, request.IfVersion, identity), request.IfVersion, cancellationToken);
        return new KvDeleteResult { Namespace = request.Namespace, Key = request.Key, Deleted = outcome.Found };
    }

    public async Task<KvIncrementResult> IncrementAsync(KvIncrement request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var command = new IncrementCommand(request.Namespace, request.Key, new BigInteger(request.Delta), new BigInteger(request.InitialValue),
            request.TtlSeconds, identity);
        var entry = (await RunAsync(command, null, cancellationToken)).Entry!;
        return new KvIncrementResult
        {
            Namespace = request.Namespace, Key = request.Key, Value = StoredValue.Parse(entry.Value), TtlSeconds = entry.TtlSeconds, Version = entry.Version,
        };
    }

    public async Task<KvTouchResult> TouchAsync(KvTouch request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var outcome = await RunAsync(new TouchCommand(request.Namespace, request.Key, request.TtlSeconds, identity), null, cancellationToken);
        return new KvTouchResult
        {
            Namespace = request.Namespace, Key = request.Key, Found = outcome.Found,
            TtlSeconds = outcome.Found ? outcome.Entry!.TtlSeconds : null, Version = outcome.Found ? outcome.Entry!.Version : null,
        };
    }

    public Task<KvGetManyResult> GetManyAsync(KvGetMany request, CancellationToken cancellationToken) => PostgresFaults.RunAsync(async () =>
    {
        const string sql = """
            SELECT e.key, e.value, extract(epoch FROM e.expires_at - now())::float8, e.version
              FROM kv_entries e
             WHERE e.namespace = $1 AND e.key = ANY($2) AND (e.expires_at IS NULL OR e.expires_at > now())
            """;
        await using var command = _dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(request.Namespace));
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. request.Keys.Distinct()] });
        var found = new Dictionary<string, StoredEntry>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
                found[reader.GetString(0)] = new StoredEntry(reader.GetString(1), 0, reader.IsDBNull(2) ? null : reader.GetDouble(2), reader.GetInt64(3));
        }
        return new KvGetManyResult
        {
            Namespace = request.Namespace,
            Entries = [.. request.Keys.Select(key => Found(request.Namespace, key, found.GetValueOrDefault(key)))],
        };
    });

    public Task<KvListResult> ListAsync(KvList request, CancellationToken cancellationToken) => PostgresFaults.RunAsync(async () =>
    {
        var limit = request.Limit ?? ListCursor.DefaultLimit;
        var prefix = request.Prefix ?? "";
        var prefixEnd = PrefixEnd(prefix);
        var sql = ListSql(bounded: prefixEnd is not null);
        await using var command = _dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(request.Namespace));
        command.Parameters.Add(Text(prefix));
        command.Parameters.Add(Text(request.Cursor is null ? "" : ListCursor.Decode(request.Cursor)));
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit + 1 });
        if (prefixEnd is not null) command.Parameters.Add(Text(prefixEnd));
        var keys = new List<KvListedKey>(limit + 1);
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
                keys.Add(new KvListedKey
                {
                    Key = reader.GetString(0), SizeBytes = reader.GetInt64(1), Version = reader.GetInt64(2),
                    TtlSeconds = reader.IsDBNull(3) ? null : reader.GetDouble(3),
                });
        }
        var more = keys.Count > limit;
        if (more) keys.RemoveAt(limit);
        return new KvListResult { Namespace = request.Namespace, Keys = keys, NextCursor = more ? ListCursor.Encode(keys[^1].Key) : null };
    });

    public Task<KvUsageResult> UsageAsync(KvUsage request, CancellationToken cancellationToken) => PostgresFaults.RunAsync(async () =>
    {
        const string sql = "SELECT used_bytes, entry_count FROM kv_namespace_usage WHERE namespace = $1";
        await using var command = _dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(request.Namespace!));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var found = await reader.ReadAsync(cancellationToken);
        return new KvUsageResult
        {
            Namespace = request.Namespace!,
            UsedBytes = found ? reader.GetInt64(0) : 0,
            Entries = found ? reader.GetInt64(1) : 0,
            QuotaBytes = _options.NamespaceQuotaBytes,
            GlobalQuotaBytes = _options.GlobalQuotaBytes,
        };
    });

    public Task<KvPurgeResult> PurgeExpiredAsync(PurgeExpiredEntries request, CancellationToken cancellationToken) =>
        PostgresFaults.RunAsync(() => _purge.RunAsync(request.Namespace, cancellationToken));

    /// <summary>Runs a mutation in the next group; a refusal becomes the error the caller gets.</summary>
    private async Task<CommandOutcome> RunAsync(GroupCommand command, long? ifVersion, CancellationToken cancellationToken)
    {
        var outcome = await _writes.RunAsync(command, cancellationToken);
        outcome.ToKvOutcome().ThrowIfRefused(command.Namespace, command.Key, outcome.AttemptedBytes, command.Identity, _limits.MaxIntegerDigits, ifVersion);
        return outcome;
    }

    private static KvGetResult Found(string ns, string key, StoredEntry? entry) => entry is null
        ? new KvGetResult { Namespace = ns, Key = key, Found = false }
        : new KvGetResult { Namespace = ns, Key = key, Found = true, Value = StoredValue.Parse(entry.Value), TtlSeconds = entry.TtlSeconds, Version = entry.Version };

    /// <summary>
    /// A kv_list page: $1 namespace, $2 prefix, $3 the cursor's key ('' for none), $4 limit + 1
    /// (the extra row says whether more follow) and, when <paramref name="bounded"/>, $5 the
    /// prefix's end. An index range scan of (namespace, key COLLATE "C") from after the cursor,
    /// within the prefix. Every bound is an index condition, none an "IS NULL OR" filter: the
    /// generic plan of a prepared statement would otherwise scan from the prefix to the cursor
    /// and on past the prefix's end, so a page deep in a large namespace cost its size. Keys are
    /// never empty, so "after ''" is "from the start".
    /// </summary>
    public static string ListSql(bool bounded) => $"""
        SELECT e.key, e.size_bytes, e.version, extract(epoch FROM e.expires_at - now())::float8
          FROM kv_entries e
         WHERE e.namespace = $1 AND e.key >= $2 AND e.key > $3 {(bounded ? "AND e.key < $5" : "")}
           AND (e.expires_at IS NULL OR e.expires_at > now())
         ORDER BY e.key
         LIMIT $4
        """;

    /// <summary>
    /// The first text after every text that starts with <paramref name="prefix"/>, in code point
    /// (so UTF-8 byte) order: the prefix with its last code point raised by one, the ones past
    /// the highest dropped; null when there is none (an empty prefix, or only U+10FFFF).
    /// </summary>
    public static string? PrefixEnd(string prefix)
    {
        var codePoints = prefix.EnumerateRunes().Select(rune => rune.Value).ToList();
        while (codePoints.Count > 0 && codePoints[^1] == 0x10FFFF) codePoints.RemoveAt(codePoints.Count - 1);
        if (codePoints.Count == 0) return null;
        var last = codePoints[^1] + 1;
        codePoints[^1] = last == 0xD800 ? 0xE000 : last; // surrogates are not code points of text
        return string.Concat(codePoints.Select(c => new System.Text.Rune(c).ToString()));
    }

    private static NpgsqlParameter Text(string value) => new NpgsqlParameter<string> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text };
}
