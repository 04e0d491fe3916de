using System.Diagnostics;
using System.Numerics;
using KvWorker.Storage;

namespace KvWorker.Postgres;

/// <summary>
/// One operation on one key, waiting for its group. Each carries the request's
/// identity, when it has one, and receives its <see cref="CommandOutcome"/> once
/// the group's transaction committed.
/// </summary>
public abstract record GroupCommand(string Namespace, string Key, RequestIdentity? Identity)
{
    private readonly TaskCompletionSource<CommandOutcome> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The operation's name, as request identities record it.</summary>
    public abstract string Operation { get; }

    /// <summary>Whether the command may change the store (and so locks its namespace).</summary>
    public virtual bool Writes => true;

    /// <summary>The span of the request this command serves, for the group's span to link to.</summary>
    public ActivityContext RequestSpan { get; } = Activity.Current?.Context ?? default;

    public Task<CommandOutcome> Outcome => _completion.Task;

    internal void Complete(CommandOutcome outcome) => _completion.TrySetResult(outcome);

    internal void Fail(Exception exception) => _completion.TrySetException(PostgresFaults.Translate(exception));

    internal void Cancel(CancellationToken cancellationToken) => _completion.TrySetCanceled(cancellationToken);
}

public sealed record GetCommand(string Namespace, string Key) : GroupCommand(Namespace, Key, null)
{
    public override string Operation => "kv_get";
    public override bool Writes => false;
}

/// <param name="TtlSeconds">Null: persistent.</param>
public sealed record SetCommand(string Namespace, string Key, StoredValue Value, double? TtlSeconds, long? IfVersion, RequestIdentity? Identity)
    : GroupCommand(Namespace, Key, Identity)
{
    public override string Operation => "kv_set";
}

/// <param name="TtlSeconds">Null: keep the entry's TTL (a new entry is persistent).</param>
public sealed record IncrementCommand(string Namespace, string Key, BigInteger Delta, BigInteger InitialValue, double? TtlSeconds, RequestIdentity? Identity)
    : GroupCommand(Namespace, Key, Identity)
{
    public override string Operation => "kv_increment";
}

public sealed record DeleteCommand(string Namespace, string Key, long? IfVersion, RequestIdentity? Identity)
    : GroupCommand(Namespace, Key, Identity)
{
    public override string Operation => "kv_delete";
}

/// <param name="TtlSeconds">Null: persistent.</param>
public sealed record TouchCommand(string Namespace, string Key, double? TtlSeconds, RequestIdentity? Identity)
    : GroupCommand(Namespace, Key, Identity)
{
    public override string Operation => "kv_touch";
}

/// <summary>An entry as stored: its value, size, remaining seconds at the group's time (null: persistent; 0 or less: expired) and version.</summary>
public sealed record StoredEntry(string Value, long SizeBytes, double? TtlSeconds, long Version)
{
    public bool Live => TtlSeconds is null or > 0;
}

/// <summary>
/// What a command came to. <see cref="Status"/> is one of <see cref="KvStatus"/>;
/// <see cref="Entry"/> is the entry the command read or left (null: not found,
/// deleted, or refused), <see cref="Found"/> whether a delete or touch found a
/// live entry; a refusal carries the figures of its error.
/// </summary>
public sealed record CommandOutcome(string Status, StoredEntry? Entry = null, bool Found = false,
    long UsedBytes = 0, long QuotaBytes = 0, long AttemptedBytes = 0, long? CurrentVersion = null)
{
    public KvOutcome ToKvOutcome() => new(Status, UsedBytes, QuotaBytes, CurrentVersion);
}
