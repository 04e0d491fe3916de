using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using KvWorker.Contracts;

namespace KvWorker.Bench;

/// <summary>
/// Where the worker's CPU goes, next to the echo service's: one replica and the echo,
/// each in turn under the same load at the highest in-flight level, sampled by
/// <c>perf record -a -e cpu-clock -g</c> (the JIT writes a perf map, so managed frames
/// have names), for kv_increment with a namespace per lane and with all lanes on one
/// namespace, kv_set and kv_get. Each sample of the process counts 1/frequency seconds
/// of its CPU; divided by the requests answered meanwhile, that is microseconds per
/// request, by what the sample was doing: the kernel's work by the system call it
/// served (sending on loopback TCP includes the receiving side's processing, which
/// runs in the sender's context), user code by its library. Then the worker's
/// functions with the most samples.
/// Needs <c>perf</c> (Debian's linux-perf, which scripts/bench.sh installs).
/// </summary>
public sealed partial class ProfileScenario(BenchRun run, Deployment deployment)
{
    private const int Frequency = 999;

    /// <summary>Component of a managed function, by the start of its type's name; the first that matches wins.</summary>
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
    ];

    /// <summary>The kernel's work, by a function on the sample's stack; the first that matches wins.</summary>
    private static readonly (string Category, string[] Functions)[] KernelWork =
    [
        ("kernel: sending (loopback TCP, receiving side included)", ["sys_sendto", "sys_sendmsg", "sys_write"]),
        ("kernel: receiving", ["sys_recvfrom", "sys_recvmsg", "sys_read"]),
        ("kernel: waking and waiting threads (futex)", ["sys_futex"]),
        ("kernel: waiting for sockets (epoll)", ["sys_epoll"]),
    ];

    private const string OtherKernel = "kernel: preemption, interrupts, other";
    private const string Runtime = "runtime (GC, JIT, stubs, libc)";

    /// <summary>Rows of the breakdown in the order printed: user code first, then the kernel.</summary>
    private static readonly string[] Categories =
        [.. Components.Select(c => c.Component), Runtime, .. KernelWork.Select(k => k.Category), OtherKernel];

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var options = run.Options;
        // All code JIT-compiled (none precompiled ReadyToRun) into anonymous memory (not W^X's memfd double
        // mapping, which perf cannot match with the map), so that the perf map names every managed frame.
        var perfMap = new Dictionary<string, string?> { ["DOTNET_PerfMapEnabled"] = "1", ["DOTNET_ReadyToRun"] = "0", ["DOTNET_EnableWriteXorExecute"] = "0" };
        var workerHost = await deployment.AddVirtualHostAsync("profile", cancellationToken);
        var echoHost = await deployment.AddVirtualHostAsync("profile_echo", cancellationToken);
        run.Progress("starting a worker and an echo service with perf maps");
        var worker = (await deployment.StartWorkersAsync(workerHost, 1, cancellationToken, perfMap))[0];
        var echo = await deployment.StartEchoAsync(echoHost, cancellationToken, perfMap);
        await using var workerClient = await RpcClient.ConnectAsync("profile", workerHost, cancellationToken);
        await using var echoClient = await RpcClient.ConnectAsync("profile_echo", echoHost, cancellationToken);
        await run.WarmUpAsync(workerClient, cancellationToken);
        await run.WarmUpAsync(echoClient, cancellationToken);

        var report = run.Results;
        report.Section("Where the worker's CPU goes");
        report.Line($"One worker replica and the echo service in turn, {options.TargetInFlight} in flight, the machine sampled with " +
            $"`perf record -a -e cpu-clock -F {Frequency} -g` for {Format.Seconds(ProfileDuration.TotalSeconds)} per cell");
        report.Line("(the JIT's perf map names managed frames). The process's samples, as microseconds of its CPU per request: user code by");
        report.Line("the library of the function on top of the stack, the kernel's work by the system call it served (sending on loopback");
        report.Line("TCP includes the receiving side's processing, which runs in the sender's context). Then the worker's top functions.");
        foreach (var (operation, layout) in new (KvOperation, Layout)[] { (KvOperations.Increment, Layout.Spread), (KvOperations.Increment, Layout.Hot), (KvOperations.Set, Layout.Spread), (KvOperations.Get, Layout.Spread) })
        {
            if (operation == KvOperations.Get) await deployment.FillLanesAsync(workerClient.Name, options.TargetInFlight, cancellationToken, layout);
            var what = $"{operation.Name}, {(layout == Layout.Hot ? "one namespace" : "a namespace per lane")}";
            var echoProfile = await ProfileAsync(echoClient, echo.Id, operation, layout, cancellationToken);
            var workerProfile = await ProfileAsync(workerClient, worker.Id, operation, layout, cancellationToken);
            run.Progress($"profile {what}: echo {Format.Rate(echoProfile.Stats.RequestsPerSecond)} req/s {Microseconds(echoProfile.Total)} µs/req, " +
                $"worker {Format.Rate(workerProfile.Stats.RequestsPerSecond)} req/s {Microseconds(workerProfile.Total)} µs/req");
            Summarize(report, what, echoProfile, workerProfile);
        }
    }

    private TimeSpan ProfileDuration => run.Options.Duration * 2;

    /// <summary>The samples of one process under load: µs of its CPU per request, by category and by function.</summary>
    private sealed record Profile(Stats Stats, Dictionary<string, double> ByCategory, Dictionary<string, double> ByFunction)
    {
        public double Total => ByCategory.Values.Sum();
    }

    private async Task<Profile> ProfileAsync(RpcClient client, int pid, KvOperation operation, Layout layout, CancellationToken cancellationToken)
    {
        await using var load = Load.Start(client, run.Options.TargetInFlight, (lane, sequence) => Workload.LaneRequest(operation, client.Name, lane, sequence, layout));
        await Task.Delay(run.Options.WarmUp, cancellationToken);
        var recorder = load.Record();
        var stacks = await SampleAsync(pid, recorder, cancellationToken);
        await load.StopAsync();
        var stats = recorder.Stats();
        var requests = Math.Max(1, stats.RequestsPerSecond * ProfileDuration.TotalSeconds);
        var perSample = 1e6 / Frequency / requests;
        var byCategory = Categories.ToDictionary(c => c, _ => 0.0);
        var byFunction = new Dictionary<string, double>();
        foreach (var stack in stacks)
        {
            byCategory[CategoryOf(stack)] += perSample;
            if (stack[0].Kernel) continue;
            var function = stack[0].Function == "[unknown]" ? $"[unknown] in {Path.GetFileName(stack[0].Library)}" : stack[0].Function;
            byFunction[function] = byFunction.GetValueOrDefault(function) + perSample;
        }
        return new Profile(stats, byCategory, byFunction);
    }

    /// <summary>One frame of a sample's stack, leaf first: in the kernel or not, the function's name and its library.</summary>
    private sealed record Frame(bool Kernel, string Function, string Library);

    /// <summary>
    /// Samples the whole machine for <see cref="ProfileDuration"/>, stopping <paramref name="recorder"/> as the
    /// sampling ends; returns the stacks of <paramref name="pid"/>'s samples.
    /// </summary>
    private async Task<List<Frame[]>> SampleAsync(int pid, Recorder recorder, CancellationToken cancellationToken)
    {
        // Machine-wide (-a) rather than one process (-p): perf attached to the echo service alone was seen to
        // wake over a million times in 20 s, taking a core from the load and halving the echo's rate.
        var data = Path.Combine(Path.GetTempPath(), $"kvbench-{pid}-{Guid.NewGuid():N}.perf");
        try
        {
            await RunAsync("perf", ["record", "-a", "-e", "cpu-clock", "-F", Frequency.ToString(CultureInfo.InvariantCulture), "-g", "-o", data,
                "--", "sleep", ProfileDuration.TotalSeconds.ToString(CultureInfo.InvariantCulture)], cancellationToken);
            // The requests counted are those answered while perf sampled, not while it reads its samples back
            // (which takes seconds of CPU and slows the load).
            recorder.Stop();
            var script = await RunAsync("perf", ["script", "-i", data, "--pid", pid.ToString(CultureInfo.InvariantCulture), "-F", "ip,sym,dso"], cancellationToken);
            return [.. script.Split("\n\n").Select(sample => sample.Split('\n').Select(line => FrameLine().Match(line)).Where(m => m.Success)
                .Select(m => new Frame(m.Groups["ip"].Value.StartsWith("ffffffff", StringComparison.Ordinal), m.Groups["function"].Value, m.Groups["library"].Value))
                .ToArray()).Where(stack => stack.Length > 0)];
        }
        finally
        {
            File.Delete(data);
        }
    }

    private static string CategoryOf(Frame[] stack)
    {
        if (stack[0].Kernel)
        {
            foreach (var (category, functions) in KernelWork)
                if (stack.Any(frame => frame.Kernel && functions.Any(f => frame.Function.Contains(f, StringComparison.Ordinal))))
                    return category;
            return OtherKernel;
        }
        // A managed frame reads "instance void [Assembly] Namespace.Type::Method(...)[Tier]": its type is the word before "::".
        var name = stack[0].Function;
        if (name.IndexOf("::", StringComparison.Ordinal) is var members and > 0)
            name = name[(name.LastIndexOf(' ', members) + 1)..];
        else
            return Runtime; // native code: the runtime's own, its stubs, libc
        foreach (var (component, prefixes) in Components)
            if (prefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
                return component;
        return Runtime;
    }

    private static void Summarize(Report report, string what, Profile echo, Profile worker)
    {
        var table = new Table($"{what}: echo {Format.Rate(echo.Stats.RequestsPerSecond)} req/s, worker {Format.Rate(worker.Stats.RequestsPerSecond)} req/s",
            "CPU µs per request", "echo", "worker", "worker − echo");
        foreach (var category in Categories)
            table.Row(category, Microseconds(echo.ByCategory[category]), Microseconds(worker.ByCategory[category]),
                Microseconds(worker.ByCategory[category] - echo.ByCategory[category]));
        table.Row("total", Microseconds(echo.Total), Microseconds(worker.Total), Microseconds(worker.Total - echo.Total));
        report.Add(table);
        var top = new Table($"{what}: the worker's top functions (user code)", "function", "µs per request");
        foreach (var (function, microseconds) in worker.ByFunction.OrderByDescending(f => f.Value).Take(12))
            top.Row(function.Length > 110 ? function[..110] + "…" : function, Microseconds(microseconds));
        report.Add(top);
    }

    private static string Microseconds(double value) => value.ToString("0.0", CultureInfo.InvariantCulture);

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

    /// <summary>A frame line of <c>perf script -F ip,sym,dso</c>: the address, the function ("[unknown]" when perf
    /// cannot name it) and, in parentheses, the library (JIT code's is the perf map).</summary>
    [GeneratedRegex(@"^\s*(?<ip>[0-9a-f]+) (?<function>.*) \((?<library>[^()]*)\)$")]
    private static partial Regex FrameLine();
}
