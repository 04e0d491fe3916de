using System.Diagnostics;
using System.Globalization;

namespace KvWorker.Bench;

/// <summary>
/// Worker memory must stay flat: a steady mix of the four operations against one
/// worker process for the soak time, its resident set (VmRSS) and peak resident
/// set (VmHWM) sampled every 30 s after a warm-up.
/// </summary>
public sealed class SoakScenario(BenchRun run, Deployment deployment)
{
    private const int InFlight = 16;
    private static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(30);

    /// <summary>"Flat": the peak at the end is at most this much above the peak after warm-up.</summary>
    private const double AllowedGrowth = 0.10;

    public async Task RunAsync(RpcClient worker, ServiceProcess process, CancellationToken cancellationToken)
    {
        var soak = run.Options.Soak;
        await deployment.FillLanesAsync(worker.Name, InFlight, cancellationToken);

        await using var load = Load.Start(worker, InFlight, (lane, sequence) => Workload.MixedRequest(worker.Name, lane, sequence));
        var warmUp = TimeSpan.FromSeconds(Math.Clamp(soak.TotalSeconds / 10, 5, 60));
        run.Progress($"soak: warming up for {Format.Seconds(warmUp.TotalSeconds)}");
        await Task.Delay(warmUp, cancellationToken);

        var table = new Table("worker memory during the soak", "elapsed", "req/s", "p50 ms", "p99 ms", "VmRSS", "VmHWM (peak)", "errors");
        var start = process.Memory();
        table.Row("0 s", "", "", "", Format.MiB(start.Resident), Format.MiB(start.Peak), "");
        var clock = Stopwatch.StartNew();
        var end = start;
        while (clock.Elapsed < soak)
        {
            var window = load.Record();
            var left = soak - clock.Elapsed;
            await Task.Delay(left < SampleInterval ? left : SampleInterval, cancellationToken);
            var stats = window.Stats();
            end = process.Memory();
            table.Row(Format.Seconds(clock.Elapsed.TotalSeconds), Format.Rate(stats.RequestsPerSecond), Format.Ms(stats.P50Ms), Format.Ms(stats.P99Ms),
                Format.MiB(end.Resident), Format.MiB(end.Peak), stats.Errors.ToString(CultureInfo.InvariantCulture));
            run.Progress($"soak: {clock.Elapsed:mm\\:ss} of {soak:mm\\:ss}  {Format.Rate(stats.RequestsPerSecond)} req/s  " +
                $"VmRSS {Format.MiB(end.Resident)}  VmHWM {Format.MiB(end.Peak)}" + (stats.Errors > 0 ? $"  {stats.Errors} errors: {stats.FirstError}" : ""));
        }
        await load.StopAsync();

        var report = run.Results;
        report.Section("Memory over a soak");
        report.Line(string.Create(CultureInfo.InvariantCulture,
            $"One worker process, a steady mix of the four operations at {InFlight} in flight for {Format.Seconds(soak.TotalSeconds)} after {Format.Seconds(warmUp.TotalSeconds)} of warm-up."));
        var growth = (double)(end.Peak - start.Peak) / start.Peak;
        report.Line($"- Peak working set (VmHWM) at the start: {Format.MiB(start.Peak)}; at the end: {Format.MiB(end.Peak)} " +
            $"({(growth >= 0 ? "+" : "")}{Format.Percent(growth)}; flat means at most +{Format.Percent(AllowedGrowth)}: " +
            (growth <= AllowedGrowth ? "holds)" : $"MISSED by {Format.Percent(growth - AllowedGrowth)} of the start)"));
        report.Line($"- Resident set (VmRSS) at the start: {Format.MiB(start.Resident)}; at the end: {Format.MiB(end.Resident)}");
        report.Add(table);
    }
}
