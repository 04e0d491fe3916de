using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using KvWorker.Contracts;

namespace KvWorker.Bench;

/// <summary>
/// Where the worker's own CPU goes: one replica under load at the highest in-flight
/// level, sampled by <c>perf record -e cpu-clock</c> (the JIT writes a perf map, so
/// managed frames have names), for kv_increment with a namespace per lane and with all
/// lanes on one namespace, kv_set and kv_get. The report gives each component's share
/// of the worker's samples (the code whose frame was on top) and the top functions.
/// Needs <c>perf</c> (Debian's linux-perf, which scripts/bench.sh installs).
/// </summary>
public sealed partial class ProfileScenario(BenchRun run, Deployment deployment)
{
    /// <summary>Component of a function, by the start of its name; the first that matches wins.</summary>
    private static readonly (string Component, string[] Prefixes)[] Components =
    [
        ("KvWorker", ["KvWorker."]),
        ("MassTransit", ["MassTransit.", "GreenPipes."]),
        ("RabbitMQ.Client", ["RabbitMQ."]),
        ("Npgsql", ["Npgsql."]),
        ("JSON", ["System.Text.Json.", "System.Text.Encodings."]),
        ("Polly", ["Polly."]),
        ("logging and telemetry", ["Microsoft.Extensions.Logging", "Serilog.", "System.Diagnostics.", "OpenTelemetry."]),
        ("threads, tasks and channels", ["System.Threading.", "System.Runtime.CompilerServices.", "System.Collections.Concurrent."]),
        ("other .NET libraries", ["System.", "Microsoft.", "Internal."]),
        ("runtime (GC, JIT, stubs)", ["libcoreclr", "libclrjit", "[unknown]", "libSystem", "libc.so", "libc-"]),
        ("kernel (network, scheduling)", ["[k]"]),
    ];

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var options = run.Options;
        var host = await deployment.AddVirtualHostAsync("profile", cancellationToken);
        run.Progress("starting a worker with a perf map");
        var worker = (await deployment.StartWorkersAsync(host, 1, cancellationToken,
            // All code JIT-compiled (none precompiled ReadyToRun) into anonymous memory (not W^X's memfd double
            // mapping, which perf cannot match with the map), so that the perf map names every managed frame.
            new Dictionary<string, string?> { ["DOTNET_PerfMapEnabled"] = "1", ["DOTNET_ReadyToRun"] = "0", ["DOTNET_EnableWriteXorExecute"] = "0" }))[0];
        await using var client = await RpcClient.ConnectAsync("profile", host, cancellationToken);
        await run.WarmUpAsync(client, cancellationToken);

        var report = run.Results;
        report.Section("Where the worker's CPU goes");
        report.Line($"One worker replica, {options.TargetInFlight} in flight, sampled with `perf record -e cpu-clock -F 999 -g` for " +
            $"{Format.Seconds(ProfileDuration.TotalSeconds)} per cell (the JIT's perf map names managed frames). Share of the");
        report.Line("worker's samples by the code on top of the stack, then the functions with the most samples.");
        foreach (var (operation, layout) in new (KvOperation, Layout)[] { (KvOperations.Increment, Layout.Spread), (KvOperations.Increment, Layout.Hot), (KvOperations.Set, Layout.Spread), (KvOperations.Get, Layout.Spread) })
        {
            if (operation == KvOperations.Get) await deployment.FillLanesAsync(client.Name, options.TargetInFlight, cancellationToken, layout);
            await using var load = Load.Start(client, options.TargetInFlight, (lane, sequence) => Workload.LaneRequest(operation, client.Name, lane, sequence, layout));
            await Task.Delay(options.WarmUp, cancellationToken);
            var recorder = load.Record();
            var samples = await SampleAsync(worker.Id, cancellationToken);
            recorder.Stop();
            await load.StopAsync();
            var what = $"{operation.Name}, {(layout == Layout.Hot ? "one namespace" : "a namespace per lane")}";
            run.Progress($"profile {what}: {Format.Rate(recorder.Stats().RequestsPerSecond)} req/s, {samples.Sum(s => s.Samples):N0} samples");
            Summarize(report, what, recorder.Stats(), samples);
        }
    }

    private TimeSpan ProfileDuration => run.Options.Duration * 2;

    /// <summary>Samples the worker for <see cref="ProfileDuration"/>; returns (function, samples) with the function on top of the stack.</summary>
    private async Task<List<(string Function, long Samples)>> SampleAsync(int pid, CancellationToken cancellationToken)
    {
        var data = Path.Combine(Path.GetTempPath(), $"kvbench-{pid}-{Guid.NewGuid():N}.perf");
        try
        {
            await RunAsync("perf", ["record", "-e", "cpu-clock", "-F", "999", "-g", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", data,
                "--", "sleep", ProfileDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)], cancellationToken);
            var output = await RunAsync("perf", ["report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym", "-g", "none",
                "--percent-limit", "0", "-F", "sample,dso,sym"], cancellationToken);
            return [.. output.Split('\n').Select(line => ReportLine().Match(line)).Where(m => m.Success)
                .Select(m => (Function(m.Groups["dso"].Value, m.Groups["function"].Value.Trim()), long.Parse(m.Groups["samples"].Value, CultureInfo.InvariantCulture)))];
        }
        finally
        {
            File.Delete(data);
        }
    }

    private static void Summarize(Report report, string what, Stats stats, List<(string Function, long Samples)> samples)
    {
        var total = Math.Max(1, samples.Sum(s => s.Samples));
        var byComponent = samples.GroupBy(s => ComponentOf(s.Function)).Select(g => (Component: g.Key, Samples: g.Sum(s => s.Samples)))
            .OrderByDescending(c => c.Samples).ToList();
        var table = new Table($"{what}: {Format.Rate(stats.RequestsPerSecond)} req/s, {total:N0} samples", "component", "share of the worker's CPU");
        foreach (var (component, count) in byComponent) table.Row(component, Format.Percent((double)count / total));
        report.Add(table);
        var top = new Table($"{what}: top functions", "function", "share");
        foreach (var (function, count) in samples.OrderByDescending(s => s.Samples).Take(15))
            top.Row(function.Length > 110 ? function[..110] + "…" : function, Format.Percent((double)count / total));
        report.Add(top);
    }

    /// <summary>A sample's function as reported: its name, or for code perf cannot name the library it is in.</summary>
    private static string Function(string dso, string symbol) =>
        symbol.StartsWith("[.] 0x", StringComparison.Ordinal) ? $"[.] {dso}" : symbol;

    private static string ComponentOf(string function)
    {
        // perf prints "[.] name" for user code and "[k] name" for the kernel. A managed frame reads
        // "[.] instance void [Assembly] Namespace.Type::Method(...)[Tier]": its type is the word before "::".
        var name = function.StartsWith("[k]", StringComparison.Ordinal) ? "[k]" : function[4..];
        if (name.IndexOf("::", StringComparison.Ordinal) is var members and > 0)
            name = name[(name.LastIndexOf(' ', members) + 1)..];
        foreach (var (component, prefixes) in Components)
            if (prefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
                return component;
        return "runtime (GC, JIT, stubs)";
    }

    private static async Task<string> RunAsync(string program, string[] arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {await errors}");
        return await output;
    }

    /// <summary>A line of <c>perf report -F sample,dso,sym</c>: the sample count, the library (JIT code's is "[JIT] tid N"),
    /// then "[.] function" or "[k] function".</summary>
    [GeneratedRegex(@"^\s*(?<samples>\d+)\s+(?<dso>.+?)\s+(?<function>\[[.k]\] .*)$")]
    private static partial Regex ReportLine();
}
