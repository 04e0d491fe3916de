using System.Diagnostics;
using System.Globalization;

namespace KvWorker.Bench;

/// <summary>
/// One benchmark run: each scenario on deployments of its own (fresh database,
/// fresh virtual hosts, its own worker processes), progress on stderr, and the
/// report assembled at the end.
/// </summary>
public sealed class BenchRun(BenchOptions options)
{
    private readonly Stopwatch _elapsed = Stopwatch.StartNew();
    private readonly string _runId = "kvbench_" + DateTime.UtcNow.ToString("yyyyMMdd_HHmmss", CultureInfo.InvariantCulture);

    public BenchOptions Options => options;

    /// <summary>Results of the scenarios, in the order they ran.</summary>
    public Report Results { get; } = new();

    public void Progress(string message) =>
        Console.Error.WriteLine($"[{_elapsed.Elapsed:hh\\:mm\\:ss}] {message}");

    public async Task<Report> RunAsync(CancellationToken cancellationToken)
    {
        var machine = await Machine.DescribeAsync(cancellationToken);
        Progress($"{options.Describe()}; load average {Machine.LoadAverage()}");

        if (options.Scenarios.Contains("table") || options.Scenarios.Contains("scaling"))
        {
            await using var deployment = await CreateDeploymentAsync("main", cancellationToken);
            var (oneHost, oneProcesses) = await StartWorkersAsync(deployment, "w1", 1, cancellationToken, options.WorkerSettings);
            await using var oneReplica = await RpcClient.ConnectAsync("w1", oneHost, cancellationToken);
            if (options.Scenarios.Contains("table"))
            {
                var (twoHost, twoProcesses) = await StartWorkersAsync(deployment, "w2", options.Variant is null ? 2 : 1, cancellationToken, options.Variant);
                await using var twoReplicas = await RpcClient.ConnectAsync("w2", twoHost, cancellationToken);
                var echoHost = await deployment.AddVirtualHostAsync("echo", cancellationToken);
                var rawEchoHost = await deployment.AddVirtualHostAsync("rawecho", cancellationToken);
                Progress("starting the echo services");
                var echoProcess = await deployment.StartEchoAsync(echoHost, cancellationToken);
                var rawEchoProcess = await deployment.StartRawEchoAsync(rawEchoHost, Deployment.PrefetchCount, cancellationToken);
                await using var echo = await RpcClient.ConnectAsync("echo", echoHost, cancellationToken);
                await using var rawEcho = await RpcClient.ConnectAsync("rawecho", rawEchoHost, cancellationToken);
                var cpu = new CpuMeter(Deployment.PostgresPort, Deployment.Broker.Port);
                await new TableScenario(this, deployment, cpu).RunAsync(
                    new Target(rawEcho, "raw echo", [rawEchoProcess.Id]), new Target(echo, "echo", [echoProcess.Id]),
                    new Target(oneReplica, "1 replica", [.. oneProcesses.Select(p => p.Id)]),
                    new Target(twoReplicas, options.Variant is null ? "2 replicas" : "variant", [.. twoProcesses.Select(p => p.Id)]), cancellationToken);
            }
            if (options.Scenarios.Contains("scaling"))
                await new ScalingScenario(this, deployment).RunAsync(oneReplica, cancellationToken);
        }
        if (options.Scenarios.Contains("profile"))
        {
            await using var deployment = await CreateDeploymentAsync("profile", cancellationToken);
            await new ProfileScenario(this, deployment).RunAsync(cancellationToken);
        }
        if (options.Scenarios.Contains("purge"))
        {
            await using var deployment = await CreateDeploymentAsync("purge", cancellationToken);
            var (host, _) = await StartWorkersAsync(deployment, "purge", 1, cancellationToken, PurgeScenario.WorkerSettings);
            await using var client = await RpcClient.ConnectAsync("purge", host, cancellationToken);
            await new PurgeScenario(this, deployment).RunAsync(client, cancellationToken);
        }
        if (options.Scenarios.Contains("soak"))
        {
            await using var deployment = await CreateDeploymentAsync("soak", cancellationToken);
            var (host, processes) = await StartWorkersAsync(deployment, "soak", 1, cancellationToken);
            await using var client = await RpcClient.ConnectAsync("soak", host, cancellationToken);
            await new SoakScenario(this, deployment).RunAsync(client, processes[0], cancellationToken);
        }

        var report = new Report();
        report.Section("Machine and run");
        foreach (var line in machine) report.Line(line);
        report.Line($"- Load average at the end: {Machine.LoadAverage()} (other work on the machine shows up here)");
        report.Line($"- Settings: {options.Describe()}; run took {_elapsed.Elapsed:hh\\:mm\\:ss}");
        report.Append(Results);
        return report;
    }

    /// <summary>Mixed load on a fresh target before it is measured, so no figure pays for start-up (JIT, pools, connections).</summary>
    public async Task WarmUpAsync(ILoadTarget target, CancellationToken cancellationToken)
    {
        Progress($"warming up {target.Name}");
        await Load.MeasureAsync(target, options.TargetInFlight, (lane, sequence) => Workload.MixedRequest(target.Name, lane, sequence),
            TimeSpan.Zero, options.StartUpWarmUp, cancellationToken);
    }

    private async Task<Deployment> CreateDeploymentAsync(string purpose, CancellationToken cancellationToken)
    {
        Progress($"creating database {_runId}_{purpose}");
        return await Deployment.CreateAsync($"{_runId}_{purpose}", cancellationToken);
    }

    /// <summary>A virtual host <c>{deployment}_{name}</c> with <paramref name="replicas"/> worker processes consuming on it.</summary>
    private async Task<(Uri Host, ServiceProcess[] Processes)> StartWorkersAsync(
        Deployment deployment, string name, int replicas, CancellationToken cancellationToken,
        IDictionary<string, string?>? overrides = null)
    {
        var host = await deployment.AddVirtualHostAsync(name, cancellationToken);
        Progress($"starting {replicas} worker process(es) on virtual host {deployment.Name}_{name}");
        return (host, await deployment.StartWorkersAsync(host, replicas, cancellationToken, overrides));
    }
}
