using System.Diagnostics;

namespace KvWorker.Bench;

/// <summary>
/// Keeps exactly <c>inFlight</c> requests outstanding against a target: each lane
/// sends its next request as soon as the previous one is answered. Latencies go
/// to whichever <see cref="Recorder"/> is current, so one load can be measured in phases.
/// </summary>
public sealed class Load : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _lanes;
    private Recorder? _recorder;

    private Load(ILoadTarget target, int inFlight, Func<int, long, Request> next)
    {
        _lanes = Enumerable.Range(0, inFlight).Select(lane => Task.Run(() => RunLaneAsync(target, lane, next))).ToArray();
    }

    public static Load Start(ILoadTarget target, int inFlight, Func<int, long, Request> next) => new(target, inFlight, next);

    /// <summary>Starts a new measurement phase; the previous recorder stops collecting.</summary>
    public Recorder Record()
    {
        var recorder = new Recorder();
        Interlocked.Exchange(ref _recorder, recorder)?.Stop();
        return recorder;
    }

    /// <summary>
    /// Warms up, then measures for the given time; returns the figures, with the CPU time per
    /// request of the measured window when <paramref name="cpu"/> samples it.
    /// </summary>
    public static async Task<Stats> MeasureAsync(
        ILoadTarget target, int inFlight, Func<int, long, Request> next, TimeSpan warmUp, TimeSpan duration, CancellationToken cancellationToken,
        Func<CpuSample>? cpu = null)
    {
        await using var load = Start(target, inFlight, next);
        await Task.Delay(warmUp, cancellationToken);
        var before = cpu?.Invoke();
        var recorder = load.Record();
        await Task.Delay(duration, cancellationToken);
        recorder.Stop();
        var after = cpu?.Invoke();
        await load.StopAsync();
        var stats = recorder.Stats();
        return before is null ? stats : stats with { Cpu = before.PerRequest(after!, stats.Requests) };
    }

    /// <summary>Stops sending, waits for the requests in flight, and rethrows what a lane failed with.</summary>
    public async Task StopAsync()
    {
        Volatile.Read(ref _recorder)?.Stop();
        await _stop.CancelAsync();
        await Task.WhenAll(_lanes);
    }

    private async Task RunLaneAsync(ILoadTarget target, int lane, Func<int, long, Request> next)
    {
        for (long sequence = 0; !_stop.IsCancellationRequested; sequence++)
        {
            var started = Stopwatch.GetTimestamp();
            // Requests in flight finish even when stopping: an abandoned call would skew the next cell.
            var error = await target.CallAsync(next(lane, sequence), CancellationToken.None);
            Volatile.Read(ref _recorder)?.Add(Stopwatch.GetElapsedTime(started), error);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _stop.Dispose();
    }
}

/// <summary>Latencies and errors of one measurement phase.</summary>
public sealed class Recorder
{
    private readonly List<double> _latenciesMs = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _errors;
    private string? _firstError;
    private bool _stopped;

    public void Add(TimeSpan latency, string? error)
    {
        lock (_latenciesMs)
        {
            if (_stopped) return;
            _latenciesMs.Add(latency.TotalMilliseconds);
            if (error is null) return;
            _errors++;
            _firstError ??= error;
        }
    }

    public void Stop()
    {
        lock (_latenciesMs)
        {
            if (_stopped) return;
            _stopped = true;
            _clock.Stop();
        }
    }

    public Stats Stats()
    {
        lock (_latenciesMs)
        {
            var sorted = _latenciesMs.Order().ToArray();
            var seconds = _clock.Elapsed.TotalSeconds;
            return new Stats(seconds > 0 ? sorted.Length / seconds : 0,
                Percentile(sorted, 0.50), Percentile(sorted, 0.99), sorted.Length == 0 ? 0 : sorted[^1],
                sorted.Length, _errors, _firstError);
        }
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    private static double Percentile(double[] sorted, double fraction) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>
/// Figures of one measurement (or the medians over rounds): rate, latency percentiles in
/// milliseconds, requests and errors, and CPU time per request when it was measured.
/// </summary>
public sealed record Stats(double RequestsPerSecond, double P50Ms, double P99Ms, double MaxMs, long Requests, long Errors, string? FirstError)
{
    public CpuPerRequest? Cpu { get; init; }

    /// <summary>The median of each figure over rounds; requests and errors are summed.</summary>
    public static Stats Median(IReadOnlyCollection<Stats> rounds) => new(
        MedianOf(rounds.Select(r => r.RequestsPerSecond)),
        MedianOf(rounds.Select(r => r.P50Ms)), MedianOf(rounds.Select(r => r.P99Ms)), MedianOf(rounds.Select(r => r.MaxMs)),
        rounds.Sum(r => r.Requests), rounds.Sum(r => r.Errors), rounds.Select(r => r.FirstError).FirstOrDefault(e => e is not null))
    {
        Cpu = rounds.Any(r => r.Cpu is not null) ? CpuPerRequest.Median(rounds.Where(r => r.Cpu is not null).Select(r => r.Cpu!)) : null,
    };

    public static double MedianOf(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return 0;
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
