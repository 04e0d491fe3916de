using System.Diagnostics;
using System.Threading.Channels;
using KvWorker.Storage;
using Npgsql;
using NpgsqlTypes;

namespace KvWorker.Postgres;

/// <summary>
/// Group commit, set-based: the commands that arrive while a transaction is in
/// flight form the next group, which runs in one transaction of two round trips.
/// The first locks the namespaces the group writes (advisory locks, in hash order,
/// so groups and purges cannot deadlock) and reads, set-based, everything its
/// commands need: their entries, namespace counters and the global counter (request
/// identities only when a replay is suspected, see <see cref="ExecuteAsync"/>).
/// <see cref="GroupSimulation"/> then applies the commands
/// one by one in arrival order, in memory. The second round trip writes the end
/// result, a statement per table and kind of change over arrays (new entries
/// inserted in one, changed ones updated in one, removed ones deleted in one, each
/// namespace's counters once, identities and their answers in one, events in one),
/// and commits. Each command gets its own outcome, only after
/// the commit. A group that fails for any reason but a transient one is run again
/// command by command, so only the faulty command fails.
/// </summary>
public sealed class GroupCommit
{
    /// <summary>The spans of groups (source <c>KvWorker.Postgres</c>), each linked to the requests it served.</summary>
    public static readonly ActivitySource Tracing = new("KvWorker.Postgres");

    /// <summary>The first key of the advisory locks on namespaces (the second is the namespace's hashtext): "kv".</summary>
    public const int NamespaceLockClass = 0x6b76;

    private readonly NpgsqlDataSource _dataSource;
    private readonly GroupSettings _settings;
    private readonly int _maxCommands;
    private readonly Channel<(GroupCommand Command, CancellationToken CancellationToken)> _queue =
        Channel.CreateUnbounded<(GroupCommand, CancellationToken)>();
    private long _groups;

    /// <param name="transactions">Groups in flight at once; while they run, the next group gathers.</param>
    public GroupCommit(NpgsqlDataSource dataSource, GroupSettings settings, int maxCommands, int transactions)
    {
        _dataSource = dataSource;
        _settings = settings;
        _maxCommands = maxCommands;
        for (var i = 0; i < transactions; i++) _ = Task.Run(RunGroupsAsync);
    }

    /// <summary>Groups executed so far.</summary>
    public long Groups => Interlocked.Read(ref _groups);

    /// <summary>Runs <paramref name="command"/> in the next group; a caller that gives up stops waiting, but a command already sent still completes.</summary>
    public Task<CommandOutcome> RunAsync(GroupCommand command, CancellationToken cancellationToken)
    {
        if (!_queue.Writer.TryWrite((command, cancellationToken)))
            throw new InvalidOperationException("group commit is not accepting commands");
        return command.Outcome.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// One runner of groups. Under load it keeps its connection from group to group; it returns
    /// it to the pool when no command is waiting.
    /// </summary>
    private async Task RunGroupsAsync()
    {
        var group = new List<GroupCommand>(_maxCommands);
        NpgsqlConnection? connection = null;
        while (true)
        {
            if (connection is not null && !_queue.Reader.TryPeek(out _))
            {
                await connection.DisposeAsync();
                connection = null;
            }
            if (!await _queue.Reader.WaitToReadAsync()) break;
            while (group.Count < _maxCommands && _queue.Reader.TryRead(out var pending))
            {
                if (pending.CancellationToken.IsCancellationRequested) pending.Command.Cancel(pending.CancellationToken);
                else group.Add(pending.Command);
            }
            if (group.Count == 0) continue;
            connection = await ExecuteWithFallbackAsync(group, connection);
            group.Clear();
        }
    }

    /// <summary>Runs the group; returns the connection for the next one, null when it broke or never opened.</summary>
    private async Task<NpgsqlConnection?> ExecuteWithFallbackAsync(List<GroupCommand> group, NpgsqlConnection? connection)
    {
        try
        {
            connection ??= await _dataSource.OpenConnectionAsync();
            await ExecuteAsync(connection, group);
            return connection;
        }
        catch (Exception ex) when (group.Count > 1 && !PostgresFaults.IsTransient(ex))
        {
            // Not transient: reported by whichever command caused it, when it runs alone.
            foreach (var command in group) connection = await ExecuteWithFallbackAsync([command], await UsableAsync(connection));
            return connection;
        }
        catch (Exception ex)
        {
            foreach (var command in group) command.Fail(ex);
            if (!PostgresFaults.IsTransient(ex)) return await UsableAsync(connection);
            // Perhaps the server's fault (a demoted primary, say): the retry takes a new connection.
            if (connection is not null) await connection.DisposeAsync();
            return null;
        }
    }

    /// <summary>The connection if it is still open (a failed group has rolled back); else disposed, and null.</summary>
    private static async Task<NpgsqlConnection?> UsableAsync(NpgsqlConnection? connection)
    {
        if (connection is { State: System.Data.ConnectionState.Open }) return connection;
        if (connection is not null) await connection.DisposeAsync();
        return null;
    }

    private async Task ExecuteAsync(NpgsqlConnection connection, List<GroupCommand> group)
    {
        using var span = StartSpan(group);
        Interlocked.Increment(ref _groups);
        PostgresMetrics.GroupExecuted(group.Count);
        var writes = group.Any(command => command.Writes);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // Request identities are read only when an answer may depend on them. Replays are rare:
                // one that the simulation applies again fails the INSERT of its identity, and the group
                // runs again with identities read; one that it refuses (a version conflict, say, after
                // the first run changed the version) reads them before anything is answered.
                // Likewise the expired entries a quota refusal would count as free: a namespace's, or
                // all of them for the global quota, read when a run of the simulation asks for them.
                // A further read may change which commands are refused, so the simulation runs again
                // until it asks for nothing new: identities at most once, each expired figure at most once.
                var identitiesRead = attempt > 1;
                var snapshot = await ReadAsync(connection, group, writes, identitiesRead);
                var (simulation, outcomes) = Simulate(group, snapshot);
                while (true)
                {
                    if (!identitiesRead && RefusesAnIdentity(group, outcomes))
                    {
                        snapshot = snapshot with { Identities = await ReadIdentitiesAsync(connection, group) };
                        identitiesRead = true;
                    }
                    else if (simulation.ReclaimablesNeeded.Count > 0 || simulation.GlobalExpiredNeeded)
                        snapshot = await ReadExpiredAsync(connection, group, snapshot, simulation);
                    else break;
                    (simulation, outcomes) = Simulate(group, snapshot);
                }
                if (writes) await WriteAsync(connection, group, simulation, snapshot.Now);
                for (var i = 0; i < group.Count; i++) group[i].Complete(outcomes[i]);
                return;
            }
            catch (PostgresException ex) when (ex is { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: "kv_processed_requests_pkey" } && attempt < 3)
            {
                // A replica applied one of these requests meanwhile: read its record and run again.
                await RollBackAsync(connection);
            }
            catch
            {
                await RollBackAsync(connection);
                throw;
            }
        }
    }

    private static bool RefusesAnIdentity(List<GroupCommand> group, CommandOutcome[] outcomes)
    {
        for (var i = 0; i < group.Count; i++)
            if (group[i].Identity is not null && outcomes[i].Status != KvStatus.Ok) return true;
        return false;
    }

    private (GroupSimulation Simulation, CommandOutcome[] Outcomes) Simulate(List<GroupCommand> group, GroupSnapshot snapshot)
    {
        var simulation = new GroupSimulation(snapshot, _settings);
        var outcomes = new CommandOutcome[group.Count];
        for (var i = 0; i < group.Count; i++) outcomes[i] = simulation.Apply(group[i]);
        return (simulation, outcomes);
    }

    /// <summary>
    /// The first round trip. A group that writes begins its transaction, locks its namespaces
    /// and reads their counters, the global counter (locked, when a global quota is kept) and,
    /// when asked to, its identities; every group reads its keys' entries.
    /// </summary>
    private async Task<GroupSnapshot> ReadAsync(NpgsqlConnection connection, List<GroupCommand> group, bool writes, bool readIdentities)
    {
        var keys = group.Select(command => (command.Namespace, command.Key)).Distinct().ToArray();
        var namespaces = group.Where(command => command.Writes).Select(command => command.Namespace).Distinct().ToArray();
        var identities = readIdentities ? Identities(group) : [];
        var global = writes && _settings.GlobalQuotaBytes is not null;

        await using var batch = new NpgsqlBatch(connection);
        if (writes)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
            if (_settings.RequireSynchronousReplication) batch.BatchCommands.Add(new NpgsqlBatchCommand(SynchronousReplication.SettingsSql));
            batch.BatchCommands.Add(Command("SELECT kv_lock_namespaces($1)", Array(namespaces)));
            batch.BatchCommands.Add(Command("""
                SELECT namespace, used_bytes, entry_count, last_version FROM kv_namespace_usage WHERE namespace = ANY($1)
                """, Array(namespaces)));
            if (global) batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT used_bytes, entry_count FROM kv_global_usage FOR UPDATE"));
            if (identities.Length > 0) batch.BatchCommands.Add(Command(IdentitiesSql, Array(identities)));
        }
        // The group's clock: read after its locks were granted, not now(), the transaction's start, which
        // may precede a wait for them. Liveness, remaining TTLs and new expiries all count from it.
        batch.BatchCommands.Add(Command("""
            SELECT t.now, e.namespace, e.key, e.value, e.size_bytes, extract(epoch FROM e.expires_at - t.now)::float8, e.version
              FROM (SELECT clock_timestamp() AS now) AS t
              LEFT JOIN (kv_entries e JOIN unnest($1::text[], $2::text[]) AS k(namespace, key)
                         ON e.namespace = k.namespace AND e.key = k.key) ON true
            """, Array(keys.Select(k => k.Namespace)), Array(keys.Select(k => k.Key))));

        var counters = new Dictionary<string, (long, long, long)>(StringComparer.Ordinal);
        var records = new Dictionary<string, IdentityRecord>(StringComparer.Ordinal);
        var entries = new Dictionary<(string, string), StoredEntry>();
        (long, long) globalCounters = default;
        var now = DateTimeOffset.MinValue;
        await using var reader = await batch.ExecuteReaderAsync();
        if (writes)
        {
            // BEGIN has no result.
            if (_settings.RequireSynchronousReplication) await RequireSynchronousReplicationAsync(reader, committed: false);
            await reader.NextResultAsync(); // past the locks
            while (await reader.ReadAsync())
                counters[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
            if (global)
            {
                await reader.NextResultAsync();
                await reader.ReadAsync();
                globalCounters = (reader.GetInt64(0), reader.GetInt64(1));
            }
            if (identities.Length > 0)
            {
                await reader.NextResultAsync();
                await ReadIdentityRecordsAsync(reader, records);
            }
            await reader.NextResultAsync();
        }
        while (await reader.ReadAsync())
        {
            now = reader.GetFieldValue<DateTimeOffset>(0);
            if (reader.IsDBNull(1)) continue;
            entries[(reader.GetString(1), reader.GetString(2))] = new StoredEntry(
                reader.GetString(3), reader.GetInt64(4), reader.IsDBNull(5) ? null : reader.GetDouble(5), reader.GetInt64(6));
        }
        return new GroupSnapshot(now, entries, counters, globalCounters, records);
    }

    private const string IdentitiesSql = """
        SELECT request_id, operation, namespace, key, request_hash, result, ttl_seconds, version
          FROM kv_processed_requests WHERE request_id = ANY($1)
        """;

    private static string[] Identities(List<GroupCommand> group) =>
        group.Where(command => command.Identity is not null).Select(command => command.Identity!.MessageId).Distinct().ToArray();

    /// <summary>Rarely, a read of the group's request identities on their own (see <see cref="ExecuteAsync"/>).</summary>
    private static async Task<Dictionary<string, IdentityRecord>> ReadIdentitiesAsync(NpgsqlConnection connection, List<GroupCommand> group)
    {
        var records = new Dictionary<string, IdentityRecord>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand(IdentitiesSql, connection) { Parameters = { Array(Identities(group)) } };
        await using var reader = await command.ExecuteReaderAsync();
        await ReadIdentityRecordsAsync(reader, records);
        return records;
    }

    private static async Task ReadIdentityRecordsAsync(NpgsqlDataReader reader, Dictionary<string, IdentityRecord> records)
    {
        while (await reader.ReadAsync())
            records[reader.GetString(0)] = new IdentityRecord(
                NullableString(reader, 1), NullableString(reader, 2), NullableString(reader, 3), NullableString(reader, 4),
                NullableString(reader, 5), reader.IsDBNull(6) ? null : reader.GetDouble(6), reader.IsDBNull(7) ? null : reader.GetInt64(7));
    }

    /// <summary>
    /// Rarely, a further read: what the expired entries the group did not read add up to, in
    /// the namespaces whose quota refused a write, and anywhere when the global quota did.
    /// </summary>
    private async Task<GroupSnapshot> ReadExpiredAsync(
        NpgsqlConnection connection, List<GroupCommand> group, GroupSnapshot snapshot, GroupSimulation simulation)
    {
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(Command($"""
            SELECT e.namespace, coalesce(sum(e.size_bytes), 0)::bigint, count(*)
              FROM kv_entries e
             WHERE e.namespace = ANY($1) AND e.expires_at <= $2 AND {NotTouched(3)}
             GROUP BY e.namespace
            """, [Array(simulation.ReclaimablesNeeded), Time(snapshot.Now), .. Touched(group)]));
        if (simulation.GlobalExpiredNeeded)
            batch.BatchCommands.Add(Command($"""
                SELECT coalesce(sum(e.size_bytes), 0)::bigint FROM kv_entries e WHERE e.expires_at <= $1 AND {NotTouched(2)}
                """, [Time(snapshot.Now), .. Touched(group)]));

        // Added to what earlier reads found; the figures are of the group's one clock, so they agree.
        var reclaimables = new Dictionary<string, (long Bytes, long Count)>(snapshot.Reclaimables, StringComparer.Ordinal);
        foreach (var ns in simulation.ReclaimablesNeeded) reclaimables[ns] = (0, 0);
        var globalExpired = snapshot.GlobalExpiredBytes;
        await using var reader = await batch.ExecuteReaderAsync();
        while (await reader.ReadAsync()) reclaimables[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
        if (simulation.GlobalExpiredNeeded && await reader.NextResultAsync() && await reader.ReadAsync())
            globalExpired = reader.GetInt64(0);
        return snapshot with { Reclaimables = reclaimables, GlobalExpiredBytes = globalExpired };
    }

    /// <summary>
    /// An entry <c>e</c> other than those the group read (whose fate the simulation decided),
    /// given as parameters <paramref name="first"/> (namespaces) and the one after it (keys).
    /// </summary>
    private static string NotTouched(int first) =>
        $"NOT EXISTS (SELECT 1 FROM unnest(${first}::text[], ${first + 1}::text[]) AS t(namespace, key) WHERE t.namespace = e.namespace AND t.key = e.key)";

    /// <summary>The second round trip: the group's end result, a statement per table over arrays, and the commit.</summary>
    private async Task WriteAsync(NpgsqlConnection connection, List<GroupCommand> group, GroupSimulation simulation, DateTimeOffset now)
    {
        await using var batch = new NpgsqlBatch(connection);
        if (simulation.Reclaimed.Count > 0)
        {
            batch.BatchCommands.Add(Command($"""
                DELETE FROM kv_entries e WHERE e.namespace = ANY($1) AND e.expires_at <= $2 AND {NotTouched(3)}
                """, [Array(simulation.Reclaimed), Time(now), .. Touched(group)]));
        }

        // Plain inserts and updates, not upserts: the group read every row it changes under its namespace
        // locks, so it knows which exist, and writing the same entries took an upsert 1.1-1.9 times as long
        // (docs/experiments/plain-writes.md).
        var changed = simulation.ChangedKeys.ToList();
        var inserted = changed.Where(c => c.Entry is not null && !c.Stored).ToList();
        if (inserted.Count > 0)
            batch.BatchCommands.Add(Command("""
                INSERT INTO kv_entries (namespace, key, value, size_bytes, expires_at, version, updated_at)
                SELECT w.namespace, w.key, w.value, w.size_bytes, $7 + w.ttl * interval '1 second', w.version, $7
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::bigint[])
                       AS w(namespace, key, value, size_bytes, ttl, version)
                """, [.. EntryArrays(inserted), Time(now)]));

        var updated = changed.Where(c => c.Entry is not null && c.Stored).ToList();
        if (updated.Count > 0)
            batch.BatchCommands.Add(Command("""
                UPDATE kv_entries e
                   SET value = w.value, size_bytes = w.size_bytes, expires_at = $7 + w.ttl * interval '1 second',
                       version = w.version, updated_at = $7
                  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::float8[], $6::bigint[])
                       AS w(namespace, key, value, size_bytes, ttl, version)
                 WHERE e.namespace = w.namespace AND e.key = w.key
                """, [.. EntryArrays(updated), Time(now)]));

        var removed = changed.Where(c => c.Entry is null && c.Stored).ToList();
        if (removed.Count > 0)
            batch.BatchCommands.Add(Command("""
                DELETE FROM kv_entries e USING unnest($1::text[], $2::text[]) AS d(namespace, key)
                 WHERE e.namespace = d.namespace AND e.key = d.key
                """, Array(removed.Select(r => r.Key.Namespace)), Array(removed.Select(r => r.Key.Key))));

        // The counters keep their upsert: one row per namespace, almost always an update, where the
        // plain UPDATE measured no cheaper (docs/experiments/plain-writes.md).
        var namespaces = simulation.ChangedNamespaces.ToList();
        if (namespaces.Count > 0)
            batch.BatchCommands.Add(Command("""
                INSERT INTO kv_namespace_usage AS u (namespace, used_bytes, entry_count, last_version)
                SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
                ON CONFLICT (namespace) DO UPDATE
                   SET used_bytes = excluded.used_bytes, entry_count = excluded.entry_count, last_version = excluded.last_version
                """,
                Array(namespaces.Select(n => n.Namespace)), Array(namespaces.Select(n => n.UsedBytes)),
                Array(namespaces.Select(n => n.Entries)), Array(namespaces.Select(n => n.LastVersion))));

        if (_settings.GlobalQuotaBytes is not null)
            batch.BatchCommands.Add(Command("UPDATE kv_global_usage SET used_bytes = $1, entry_count = $2",
                new NpgsqlParameter<long> { TypedValue = simulation.Global.UsedBytes },
                new NpgsqlParameter<long> { TypedValue = simulation.Global.Entries }));

        var recorded = simulation.Recorded;
        if (recorded.Count > 0)
        {
            var answers = recorded.Select(r => IdentityRecord.Of(r.Command, r.Outcome)).ToList();
            // A plain INSERT: an identity that another replica recorded meanwhile fails the group, which runs again.
            batch.BatchCommands.Add(Command("""
                INSERT INTO kv_processed_requests (request_id, operation, namespace, key, request_hash, result, ttl_seconds, version)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[], $8::bigint[])
                """,
                Array(recorded.Select(r => r.Command.Identity!.MessageId)), Array(recorded.Select(r => r.Command.Operation)),
                Array(recorded.Select(r => r.Command.Namespace)), Array(recorded.Select(r => r.Command.Key)),
                Array(recorded.Select(r => r.Command.Identity!.RequestHash)), Array(answers.Select(a => a.Result)),
                Array(answers.Select(a => a.TtlSeconds)), Array(answers.Select(a => a.Version))));
        }

        if (simulation.Events.Count > 0)
            batch.BatchCommands.Add(Command("INSERT INTO kv_outbox (event_type, payload) SELECT * FROM unnest($1::text[], $2::text[])",
                Array(simulation.Events.Select(e => e.Type)), Array(simulation.Events.Select(e => e.Payload))));

        batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        if (!_settings.RequireSynchronousReplication)
        {
            await batch.ExecuteNonQueryAsync();
            return;
        }
        // Read again after the commit: a failover manager may have turned synchronous replication off
        // meanwhile, which also releases the commits waiting for the standby. PostgreSQL tells every
        // backend to reload its settings before it tells the process that releases them, and a backend
        // reloads before each message it reads, so this read sees the change that let the commit go.
        batch.BatchCommands.Add(new NpgsqlBatchCommand(SynchronousReplication.SettingsSql));
        await using var reader = await batch.ExecuteReaderAsync();
        await RequireSynchronousReplicationAsync(reader, committed: true);
    }

    /// <summary>
    /// Reads the row of <see cref="SynchronousReplication.SettingsSql"/> and moves past it; throws the
    /// transient <see cref="NotReplicatedException"/> unless commits wait for a synchronous standby.
    /// </summary>
    private static async Task RequireSynchronousReplicationAsync(NpgsqlDataReader reader, bool committed)
    {
        await reader.ReadAsync();
        var lacking = SynchronousReplication.Lacking(reader.GetString(0), reader.GetString(1));
        await reader.NextResultAsync();
        if (lacking is null) return;
        var what = committed ? "the write committed without waiting for a synchronous standby" : "the server does not replicate synchronously";
        throw new NotReplicatedException($"{what} ({lacking}), so a failover could lose it, and adapters:postgres:require_synchronous_replication is set");
    }

    /// <summary>Entries to write, as the six arrays the entry statements take: namespace, key, value, size, TTL, version.</summary>
    private static NpgsqlParameter[] EntryArrays(List<((string Namespace, string Key) Key, StoredEntry? Entry, bool Stored)> entries) =>
        [Array(entries.Select(w => w.Key.Namespace)), Array(entries.Select(w => w.Key.Key)),
         Array(entries.Select(w => w.Entry!.Value)), Array(entries.Select(w => w.Entry!.SizeBytes)),
         Array(entries.Select(w => w.Entry!.TtlSeconds)), Array(entries.Select(w => w.Entry!.Version))];

    /// <summary>The group's clock as a parameter (<see cref="GroupSnapshot.Now"/>).</summary>
    private static NpgsqlParameter Time(DateTimeOffset now) => new NpgsqlParameter<DateTimeOffset> { TypedValue = now };

    /// <summary>The group's keys, as the two parameters <see cref="NotTouched"/> reads: namespaces, then keys.</summary>
    private static NpgsqlParameter[] Touched(List<GroupCommand> group) =>
        [Array(group.Select(c => c.Namespace)), Array(group.Select(c => c.Key))];

    /// <summary>Ends a failed group's transaction, when the connection still has one.</summary>
    private static async Task RollBackAsync(NpgsqlConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open) return;
        await using var rollback = new NpgsqlCommand("ROLLBACK", connection);
        await rollback.ExecuteNonQueryAsync();
    }

    private static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    private static NpgsqlParameter Array(IEnumerable<string?> values) =>
        new NpgsqlParameter<string?[]> { TypedValue = [.. values], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };

    private static NpgsqlParameter Array(IEnumerable<long> values) => new NpgsqlParameter<long[]> { TypedValue = [.. values] };

    private static NpgsqlParameter Array(IEnumerable<long?> values) =>
        new NpgsqlParameter<long?[]> { TypedValue = [.. values], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint };

    private static NpgsqlParameter Array(IEnumerable<double?> values) =>
        new NpgsqlParameter<double?[]> { TypedValue = [.. values], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double };

    private static string? NullableString(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    /// <summary>
    /// A root span for one group, linked to the spans of the requests its commands
    /// came from. It clears the ambient span of the calling async flow, which belongs
    /// to no single request.
    /// </summary>
    private static Activity? StartSpan(List<GroupCommand> group)
    {
        Activity.Current = null;
        return Tracing.StartActivity("kv group commit", ActivityKind.Internal, parentContext: default,
            tags: [new("kv.group.commands", group.Count)],
            links: group.Select(c => c.RequestSpan).Where(context => context != default).Select(context => new ActivityLink(context)));
    }
}
