using System.Diagnostics;
using System.Threading.Channels;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>
/// Group commit: commands that arrive while a transaction is in flight are
/// sent together as one <see cref="NpgsqlBatch"/>, which PostgreSQL runs as one
/// implicit transaction with one commit, in one round trip. Each command keeps
/// its own result, delivered only after the commit. The kv functions report
/// rule violations (quota, type) as a status instead of raising, so those never
/// touch their neighbours; if a group fails for any other reason, each of its
/// commands is run again alone, so only the faulty one fails.
/// </summary>
public sealed class GroupCommit
{
    /// <summary>The spans of groups (source <c>KvWorker.Postgres</c>), each linked to the requests it served.</summary>
    public static readonly ActivitySource Tracing = new("KvWorker.Postgres");

    private readonly NpgsqlDataSource _dataSource;
    private readonly int _maxCommands;
    private readonly bool _lockNamespacesFirst;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = false });
    private long _groups;

    /// <param name="transactions">Groups in flight at once; while they run, the next group gathers.</param>
    /// <param name="lockNamespacesFirst">
    /// Lock every namespace a group writes, in sorted order, before its commands run. Needed
    /// when a command also locks the global usage row: otherwise a group holding that row
    /// could wait for a namespace another group holds while that group waits for the row.
    /// </param>
    public GroupCommit(NpgsqlDataSource dataSource, int maxCommands, int transactions, bool lockNamespacesFirst)
    {
        _dataSource = dataSource;
        _maxCommands = maxCommands;
        _lockNamespacesFirst = lockNamespacesFirst;
        for (var i = 0; i < transactions; i++) _ = Task.Run(RunGroupsAsync);
    }

    /// <summary>Groups executed so far.</summary>
    public long Groups => Interlocked.Read(ref _groups);

    /// <summary>
    /// Runs one command in the next group. <paramref name="command"/> builds it (again, if the
    /// group fails and it runs alone); <paramref name="read"/> reads its single result row.
    /// Commands of one namespace run in the order they arrived; those that
    /// <paramref name="writes"/> have their namespace locked first when the group asks for it.
    /// </summary>
    public Task<T> RunAsync<T>(string ns, bool writes, Func<NpgsqlBatchCommand> command, Func<NpgsqlDataReader, T> read,
        CancellationToken cancellationToken)
    {
        var pending = new Pending<T>(ns, writes, command, read, cancellationToken);
        if (!_queue.Writer.TryWrite(pending))
            throw new InvalidOperationException("group commit is not accepting commands");
        // A caller that gives up stops waiting; a command already sent still completes.
        return pending.Task.WaitAsync(cancellationToken);
    }

    private async Task RunGroupsAsync()
    {
        var group = new List<Pending>(_maxCommands);
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (group.Count < _maxCommands && _queue.Reader.TryRead(out var pending))
            {
                if (pending.CancellationToken.IsCancellationRequested) pending.Cancel();
                else group.Add(pending);
            }
            if (group.Count == 0) continue;
            try
            {
                await ExecuteAsync(group);
            }
            catch when (group.Count > 1)
            {
                // Reported by whichever command caused it, when it runs alone.
                foreach (var pending in group) await ExecuteAloneAsync(pending);
            }
            catch (Exception ex)
            {
                group[0].Fail(ex);
            }
            group.Clear();
        }
    }

    private async Task ExecuteAloneAsync(Pending pending)
    {
        try
        {
            await ExecuteAsync([pending]);
        }
        catch (Exception ex)
        {
            pending.Fail(ex);
        }
    }

    private async Task ExecuteAsync(List<Pending> group)
    {
        // Sorting by namespace (stable, so one namespace's commands keep their order)
        // makes every group take namespace locks in the same order: groups cannot deadlock.
        var ordered = group.Count == 1 ? group : [.. group.OrderBy(p => p.Namespace, StringComparer.Ordinal)];
        using var span = StartSpan(ordered);
        await using var batch = _dataSource.CreateBatch();
        var namespaces = ordered.Where(p => p.Writes).Select(p => p.Namespace).Distinct().ToArray();
        var lockFirst = _lockNamespacesFirst && namespaces.Length > 1;
        if (lockFirst)
        {
            const string lockSql = "SELECT kv_lock_namespaces($1)";
            batch.BatchCommands.Add(new NpgsqlBatchCommand(lockSql) { Parameters = { new NpgsqlParameter<string[]> { TypedValue = namespaces } } });
        }
        foreach (var pending in ordered) batch.BatchCommands.Add(pending.CreateCommand());

        Interlocked.Increment(ref _groups);
        await using (var reader = await batch.ExecuteReaderAsync(CancellationToken.None))
        {
            if (lockFirst) await reader.NextResultAsync();
            for (var i = 0; i < ordered.Count; i++)
            {
                if (i > 0) await reader.NextResultAsync();
                if (!await reader.ReadAsync())
                    throw new InvalidOperationException("a grouped command returned no row");
                ordered[i].Read(reader);
            }
        }
        // The reader has consumed the end of the implicit transaction: it committed.
        foreach (var pending in ordered) pending.Complete();
    }

    /// <summary>
    /// A root span for one group, linked to the spans of the requests its commands
    /// came from. It clears the ambient span of the calling async flow, which belongs
    /// to no single request.
    /// </summary>
    private static Activity? StartSpan(List<Pending> group)
    {
        Activity.Current = null;
        return Tracing.StartActivity("kv group commit", ActivityKind.Internal, parentContext: default,
            tags: [new("kv.group.commands", group.Count)],
            links: group.Select(p => p.RequestSpan).Where(context => context != default).Select(context => new ActivityLink(context)));
    }

    private abstract class Pending(string ns, bool writes, CancellationToken cancellationToken)
    {
        public string Namespace { get; } = ns;
        public bool Writes { get; } = writes;
        public CancellationToken CancellationToken { get; } = cancellationToken;
        /// <summary>The span of the request this command serves, for the group's span to link to.</summary>
        public ActivityContext RequestSpan { get; } = Activity.Current?.Context ?? default;
        public abstract NpgsqlBatchCommand CreateCommand();
        public abstract void Read(NpgsqlDataReader reader);
        public abstract void Complete();
        public abstract void Fail(Exception ex);
        public abstract void Cancel();
    }

    private sealed class Pending<T>(
        string ns, bool writes, Func<NpgsqlBatchCommand> command, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
        : Pending(ns, writes, cancellationToken)
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _completion.Task;
        public override NpgsqlBatchCommand CreateCommand() => command();
        public override void Read(NpgsqlDataReader reader) => _result = read(reader);
        public override void Complete() => _completion.TrySetResult(_result!);
        public override void Fail(Exception ex) => _completion.TrySetException(PostgresFaults.Translate(ex));
        public override void Cancel() => _completion.TrySetCanceled(CancellationToken);
    }
}
