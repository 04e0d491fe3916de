using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using KvWorker.Contracts;
using KvWorker.Storage;

namespace KvWorker.Postgres;

/// <summary>
/// Runs a group's commands one after another, in arrival order, on the state the
/// group read under its namespace locks: the rules of the store (identities,
/// versions, compare-and-set, TTLs, increments, quotas, reclaiming expired entries,
/// threshold events) applied in memory, so the group's transaction then writes
/// only the end result, set-based. Every command's outcome is what running the
/// commands one by one would have given.
/// </summary>
public sealed class GroupSimulation
{
    private readonly GroupSnapshot _snapshot;
    private readonly GroupSettings _settings;
    private readonly Dictionary<(string, string), KeyState> _keys = [];
    private readonly Dictionary<string, NamespaceState> _namespaces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (GroupCommand Command, CommandOutcome Outcome)> _claimed = new(StringComparer.Ordinal);
    private long _globalUsed;
    private long _globalEntries;
    private long _reclaimedBytes;

    public GroupSimulation(GroupSnapshot snapshot, GroupSettings settings)
    {
        _snapshot = snapshot;
        _settings = settings;
        foreach (var (key, entry) in snapshot.Entries) _keys[key] = new KeyState(entry);
        (_globalUsed, _globalEntries) = snapshot.Global;
    }

    /// <summary>Namespaces whose quota refused a write before their expired entries were counted: the group must read them and run again.</summary>
    public HashSet<string> ReclaimablesNeeded { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether the global quota refused a write before expired entries elsewhere were counted.</summary>
    public bool GlobalExpiredNeeded { get; private set; }

    /// <summary>Namespaces whose expired entries (apart from the group's own keys) the group deletes.</summary>
    public HashSet<string> Reclaimed { get; } = new(StringComparer.Ordinal);

    /// <summary>Events to queue in the outbox with the group's writes: (event type, JSON payload).</summary>
    public List<(string Type, string Payload)> Events { get; } = [];

    /// <summary>The identities to record, with their answers.</summary>
    public List<(GroupCommand Command, CommandOutcome Outcome)> Recorded { get; } = [];

    public CommandOutcome Apply(GroupCommand command)
    {
        if (command.Identity is { } identity)
        {
            if (_claimed.TryGetValue(identity.MessageId, out var earlier))
                return SameRequest(earlier.Command.Identity!, identity) ? earlier.Outcome with { Status = KvStatus.Replayed } : Refused(KvStatus.IdentityReused);
            if (_snapshot.Identities.TryGetValue(identity.MessageId, out var record))
                return record.Identifies(identity) ? record.Replay(command) : Refused(KvStatus.IdentityReused);
        }
        var outcome = command switch
        {
            GetCommand get => Get(get),
            SetCommand set => Set(set),
            IncrementCommand increment => Increment(increment),
            DeleteCommand delete => Delete(delete),
            TouchCommand touch => Touch(touch),
            _ => throw new ArgumentOutOfRangeException(nameof(command), command.GetType().Name),
        };
        if (command.Identity is { } applied && outcome.Status == KvStatus.Ok)
        {
            _claimed[applied.MessageId] = (command, outcome);
            Recorded.Add((command, outcome));
        }
        return outcome;
    }

    /// <summary>
    /// The keys whose rows the group changes: their final entry, or null to delete the row, and
    /// whether the row is in the table now. The group read every key it touches under its namespace
    /// locks, which every writer of a namespace holds, so the write knows whether to insert or update.
    /// </summary>
    public IEnumerable<((string Namespace, string Key) Key, StoredEntry? Entry, bool Stored)> ChangedKeys =>
        _keys.Where(pair => pair.Value.Changed).Select(pair => (pair.Key, pair.Value.Entry, pair.Value.Stored));

    /// <summary>The namespaces whose counters the group changes, with their final figures.</summary>
    public IEnumerable<(string Namespace, long UsedBytes, long Entries, long LastVersion)> ChangedNamespaces =>
        _namespaces.Where(pair => pair.Value.Changed)
            .Select(pair => (pair.Key, pair.Value.UsedBytes, pair.Value.Entries, pair.Value.LastVersion));

    public (long UsedBytes, long Entries) Global => (_globalUsed, _globalEntries);

    private static bool SameRequest(RequestIdentity first, RequestIdentity again) =>
        first.Operation == again.Operation && first.Namespace == again.Namespace && first.Key == again.Key && first.RequestHash == again.RequestHash;

    private static CommandOutcome Refused(string status) => new(status);

    private KeyState State(string ns, string key)
    {
        if (!_keys.TryGetValue((ns, key), out var state)) _keys[(ns, key)] = state = new KeyState(null);
        return state;
    }

    private NamespaceState Namespace(string ns)
    {
        if (!_namespaces.TryGetValue(ns, out var state))
        {
            var (used, entries, lastVersion) = _snapshot.Namespaces.GetValueOrDefault(ns);
            _namespaces[ns] = state = new NamespaceState(used, entries, lastVersion);
        }
        return state;
    }

    private CommandOutcome Get(GetCommand get)
    {
        var entry = State(get.Namespace, get.Key).Entry;
        return new CommandOutcome(KvStatus.Ok, entry is { Live: true } ? entry : null);
    }

    private CommandOutcome Set(SetCommand set)
    {
        var state = State(set.Namespace, set.Key);
        if (VersionConflict(state.Entry, set.IfVersion) is { } conflict) return conflict;
        return Write(set.Namespace, set.Key, state, set.Value.Json, set.Value.SizeBytes, set.TtlSeconds);
    }

    private CommandOutcome Increment(IncrementCommand increment)
    {
        var state = State(increment.Namespace, increment.Key);
        BigInteger next;
        double? ttl;
        if (state.Entry is { Live: true } live)
        {
            if (!IsInteger(live.Value)) return Refused(KvStatus.NotInteger);
            next = BigInteger.Parse(live.Value, CultureInfo.InvariantCulture) + increment.Delta;
            ttl = increment.TtlSeconds ?? live.TtlSeconds;
        }
        else
        {
            next = increment.InitialValue + increment.Delta;
            ttl = increment.TtlSeconds;
        }
        var text = next.ToString(CultureInfo.InvariantCulture);
        if (text.TrimStart('-').Length > _settings.MaxIntegerDigits) return Refused(KvStatus.TooLarge);
        return Write(increment.Namespace, increment.Key, state, text, Encoding.UTF8.GetByteCount(text), ttl);
    }

    private CommandOutcome Delete(DeleteCommand delete)
    {
        var state = State(delete.Namespace, delete.Key);
        if (VersionConflict(state.Entry, delete.IfVersion) is { } conflict) return conflict;
        var entry = state.Entry;
        if (entry is null) return new CommandOutcome(KvStatus.Ok, Found: false);
        // An expired entry is removed too (its bytes freed), but was not there to delete.
        var counters = Namespace(delete.Namespace);
        counters.Add(-entry.SizeBytes, -1);
        AddGlobal(-entry.SizeBytes, -1);
        state.Set(null);
        return new CommandOutcome(KvStatus.Ok, Found: entry.Live);
    }

    private CommandOutcome Touch(TouchCommand touch)
    {
        var state = State(touch.Namespace, touch.Key);
        if (state.Entry is not { Live: true } live) return new CommandOutcome(KvStatus.Ok, Found: false);
        var touched = live with { TtlSeconds = touch.TtlSeconds, Version = Namespace(touch.Namespace).NextVersion() };
        state.Set(touched);
        return new CommandOutcome(KvStatus.Ok, touched, Found: true);
    }

    /// <summary>An if_version that the key's live entry does not satisfy, as a refusal naming the live version.</summary>
    private static CommandOutcome? VersionConflict(StoredEntry? entry, long? ifVersion)
    {
        if (ifVersion is not { } expected) return null;
        var current = entry is { Live: true } live ? live.Version : (long?)null;
        var holds = expected == 0 ? current is null : current == expected;
        return holds ? null : new CommandOutcome(KvStatus.VersionConflict, CurrentVersion: current);
    }

    /// <summary>
    /// Writes a value over the key's entry (live or expired, whose bytes it replaces) when the
    /// quotas admit the difference: the namespace's first, reclaiming its expired entries first
    /// when the write would not fit, then the global one, discounting expired entries elsewhere.
    /// </summary>
    private CommandOutcome Write(string ns, string key, KeyState state, string value, long size, double? ttl)
    {
        var counters = Namespace(ns);
        var old = state.Entry;
        var delta = size - (old?.SizeBytes ?? 0);
        var replacedExpired = old is { Live: false } ? old.SizeBytes : 0;
        if (delta > 0 && counters.UsedBytes + delta > _settings.NamespaceQuotaBytes)
        {
            // Also for a value larger than the whole quota: the refusal reports live bytes.
            Reclaim(ns, key, counters);
            if (counters.UsedBytes + delta > _settings.NamespaceQuotaBytes)
                return new CommandOutcome(KvStatus.NamespaceQuota,
                    UsedBytes: counters.UsedBytes - replacedExpired, QuotaBytes: _settings.NamespaceQuotaBytes, AttemptedBytes: size);
        }
        // The global counter may run above the quota by expired entries that writes elsewhere were
        // admitted against: a write that makes live data grow is checked even when the counter does
        // not grow (an expired entry written again at its old size).
        var liveGrowth = size - (old is { Live: true } ? old.SizeBytes : 0);
        if (_settings.GlobalQuotaBytes is { } globalQuota && liveGrowth > 0 && _globalUsed + delta > globalQuota)
        {
            var used = _globalUsed - GlobalExpiredBytes(ns, key) - replacedExpired;
            if (used + liveGrowth > globalQuota)
                return new CommandOutcome(KvStatus.GlobalQuota, UsedBytes: used, QuotaBytes: globalQuota, AttemptedBytes: size);
        }

        var before = counters.UsedBytes;
        counters.Add(delta, old is null ? 1 : 0);
        AddGlobal(delta, old is null ? 1 : 0);
        var written = new StoredEntry(value, size, ttl, counters.NextVersion());
        state.Set(written);
        if (delta > 0) QueueThresholdEvents(ns, before, counters.UsedBytes);
        return new CommandOutcome(KvStatus.Ok, written);
    }

    /// <summary>
    /// Removes the namespace's expired entries other than the key being written, as a write run
    /// on its own would: those the group holds in memory now (a key an earlier refused write kept
    /// among them), and, the first time, those it did not read, whose total a further run knows
    /// (<see cref="GroupSnapshot.Reclaimables"/>); reported like a purge.
    /// </summary>
    private void Reclaim(string ns, string exceptKey, NamespaceState counters)
    {
        if (!_snapshot.Reclaimables.TryGetValue(ns, out var unread))
        {
            ReclaimablesNeeded.Add(ns);
            return;
        }
        long bytes = 0, count = 0;
        if (!counters.UnreadReclaimed)
        {
            counters.UnreadReclaimed = true;
            (bytes, count) = unread;
            _reclaimedBytes += unread.Bytes;
        }
        foreach (var ((entryNamespace, key), state) in _keys)
        {
            if (entryNamespace != ns || key == exceptKey || state.Entry is not { Live: false } expired) continue;
            bytes += expired.SizeBytes;
            count++;
            state.Set(null);
        }
        if (count == 0) return;
        Reclaimed.Add(ns);
        counters.Add(-bytes, -count);
        AddGlobal(-bytes, -count);
        Events.Add((nameof(KvEntriesExpired), JsonSerializer.Serialize(new KvEntriesExpired
        {
            Namespace = ns, Count = count, BytesFreed = bytes, At = _snapshot.Now,
        })));
    }

    /// <summary>Bytes of expired entries anywhere (other than the key being written) that still count against the global quota.</summary>
    private long GlobalExpiredBytes(string ns, string exceptKey)
    {
        if (_snapshot.GlobalExpiredBytes is not { } unread)
        {
            GlobalExpiredNeeded = true;
            return 0;
        }
        // The unread ones, less those a reclaim of this group has deleted since, plus the group's own.
        var bytes = unread - _reclaimedBytes;
        foreach (var ((entryNamespace, key), state) in _keys)
            if (!(entryNamespace == ns && key == exceptKey) && state.Entry is { Live: false } expired) bytes += expired.SizeBytes;
        return bytes;
    }

    private void AddGlobal(long bytes, long entries)
    {
        _globalUsed += bytes;
        _globalEntries += entries;
    }

    /// <summary>One NamespaceQuotaThresholdReached per configured fraction that usage reached from below.</summary>
    private void QueueThresholdEvents(string ns, long before, long after)
    {
        var quota = _settings.NamespaceQuotaBytes;
        foreach (var threshold in _settings.QuotaThresholds)
        {
            if (before < threshold * quota && after >= threshold * quota)
                Events.Add((nameof(NamespaceQuotaThresholdReached), JsonSerializer.Serialize(new NamespaceQuotaThresholdReached
                {
                    Namespace = ns, Threshold = threshold, QuotaBytes = quota, UsedBytes = after, At = _snapshot.Now,
                })));
        }
    }

    /// <summary>A JSON integer: no fraction, no exponent, no leading zeros, within the digit limit.</summary>
    private bool IsInteger(string value)
    {
        if (value.Length == 0 || value.Length > _settings.MaxIntegerDigits + 1) return false;
        var digits = value[0] == '-' ? value.AsSpan(1) : value.AsSpan();
        if (digits.Length == 0 || (digits[0] == '0' && digits.Length > 1)) return false;
        foreach (var c in digits)
            if (c is < '0' or > '9') return false;
        return true;
    }

    private sealed class KeyState(StoredEntry? entry)
    {
        public StoredEntry? Entry { get; private set; } = entry;

        /// <summary>Whether the key has a row in the table (live or expired) as the group read it.</summary>
        public bool Stored { get; } = entry is not null;

        public bool Changed { get; private set; }

        public void Set(StoredEntry? entry)
        {
            Entry = entry;
            Changed = true;
        }
    }

    private sealed class NamespaceState(long usedBytes, long entries, long lastVersion)
    {
        public long UsedBytes { get; private set; } = usedBytes;
        public long Entries { get; private set; } = entries;
        public long LastVersion { get; private set; } = lastVersion;
        public bool Changed { get; private set; }
        /// <summary>Whether a reclaim has removed the namespace's expired entries that the group did not read.</summary>
        public bool UnreadReclaimed { get; set; }

        public void Add(long bytes, long entries)
        {
            UsedBytes += bytes;
            Entries += entries;
            Changed = true;
        }

        public long NextVersion()
        {
            Changed = true;
            return ++LastVersion;
        }
    }
}

/// <summary>The quotas and limits a group runs under, and whether its writes wait for a synchronous standby.</summary>
public sealed record GroupSettings(
    long NamespaceQuotaBytes, long? GlobalQuotaBytes, double[] QuotaThresholds, int MaxIntegerDigits, bool RequireSynchronousReplication = false);

/// <summary>
/// What a group read in its transaction, under its namespace locks: the time, the entries of
/// the keys it touches, its namespaces' counters, the global counter, the identities it carries,
/// and (for a second run) the expired entries it did not read.
/// </summary>
public sealed record GroupSnapshot(
    DateTimeOffset Now,
    Dictionary<(string Namespace, string Key), StoredEntry> Entries,
    Dictionary<string, (long UsedBytes, long Entries, long LastVersion)> Namespaces,
    (long UsedBytes, long Entries) Global,
    Dictionary<string, IdentityRecord> Identities)
{
    /// <summary>Per namespace, the expired entries the group did not read: their bytes and count.</summary>
    public Dictionary<string, (long Bytes, long Count)> Reclaimables { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Bytes of expired entries anywhere that the group did not read; null until asked for.</summary>
    public long? GlobalExpiredBytes { get; init; }
}

/// <summary>A request identity as recorded: what it identified (null operation: recorded before identities did) and its answer.</summary>
public sealed record IdentityRecord(string? Operation, string? Namespace, string? Key, string? RequestHash, string? Result, double? TtlSeconds, long? Version)
{
    public bool Identifies(RequestIdentity identity) =>
        Operation is null
        || (Operation == identity.Operation && Namespace == identity.Namespace && Key == identity.Key && RequestHash == identity.RequestHash);

    /// <summary>The first answer, as <paramref name="command"/> gets it again.</summary>
    public CommandOutcome Replay(GroupCommand command) => command switch
    {
        SetCommand set => new CommandOutcome(KvStatus.Replayed, new StoredEntry(set.Value.Json, set.Value.SizeBytes, set.TtlSeconds, Version ?? 0)),
        IncrementCommand => new CommandOutcome(KvStatus.Replayed,
            new StoredEntry(Result ?? "null", Encoding.UTF8.GetByteCount(Result ?? "null"), TtlSeconds, Version ?? 0)),
        TouchCommand touch when Result == "true" => new CommandOutcome(KvStatus.Replayed,
            new StoredEntry("null", 0, TtlSeconds, Version ?? 0), Found: true),
        _ => new CommandOutcome(KvStatus.Replayed, Found: Result == "true"),
    };

    /// <summary>The parts of an answer that depend on the state it met, as recorded for its replays: (result, ttl_seconds, version).</summary>
    public static (string? Result, double? TtlSeconds, long? Version) Of(GroupCommand command, CommandOutcome outcome) => command switch
    {
        SetCommand => (null, null, outcome.Entry!.Version),
        IncrementCommand => (outcome.Entry!.Value, outcome.Entry.TtlSeconds, outcome.Entry.Version),
        TouchCommand => (outcome.Found ? "true" : "false", outcome.Entry?.TtlSeconds, outcome.Entry?.Version),
        _ => (outcome.Found ? "true" : "false", null, null),
    };
}
