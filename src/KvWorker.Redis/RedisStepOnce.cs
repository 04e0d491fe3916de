using KvWorker.Storage;

namespace KvWorker.Redis;

/// <summary>
/// A step that must have succeeded once before a change is made. The first caller runs it, the
/// others wait for that run, which goes on when a caller stops waiting; a run that failed is tried
/// again by the next caller. Once it has succeeded, waiting takes no lock.
/// </summary>
internal sealed class RedisStepOnce(Func<Task> step, string runningMessage)
{
    private readonly Lock _gate = new();
    private Task? _run;

    public Task DoneAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _run) is { IsCompletedSuccessfully: true } ? Task.CompletedTask : WaitAsync(cancellationToken);

    private async Task WaitAsync(CancellationToken cancellationToken)
    {
        Task run;
        lock (_gate)
        {
            if (_run is null || _run.IsFaulted || _run.IsCanceled) _run = RedisFaults.RunAsync(async () => { await step(); return true; }, CancellationToken.None);
            run = _run;
        }
        try
        {
            await run.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            throw new KvStoreUnavailableException($"redis unavailable: {runningMessage}", ex);
        }
    }
}
