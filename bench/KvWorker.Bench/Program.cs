using KvWorker.Bench;

// Either an echo service (baselines a0 and a), started by the benchmark as a process of its own...
if (args is [EchoServer.Argument, .. var echoArgs])
{
    await EchoServer.RunAsync(echoArgs);
    return 0;
}
if (args is [RawEchoServer.Argument, .. var rawEchoArgs])
{
    await RawEchoServer.RunAsync(rawEchoArgs);
    return 0;
}

// ...or the benchmark itself.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    await Console.Error.WriteLineAsync($"{ex.Message}\n\n{BenchOptions.Usage}");
    return 2;
}

if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // stop cleanly: processes, virtual hosts and databases are removed on the way out
    stop.Cancel();
};

try
{
    var report = await new BenchRun(options).RunAsync(stop.Token);
    Console.WriteLine(report.ToText());
    if (options.MarkdownPath is not null)
    {
        await File.WriteAllTextAsync(options.MarkdownPath, report.ToMarkdown("Benchmarks", options.Introduction(args)));
        await Console.Error.WriteLineAsync($"report written to {options.MarkdownPath}");
    }
    return 0;
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    await Console.Error.WriteLineAsync("benchmark stopped");
    return 130;
}
catch (Exception ex)
{
    await Console.Error.WriteLineAsync($"benchmark failed: {ex}");
    foreach (var process in ServiceProcess.Started)
        await Console.Error.WriteLineAsync(process.RecentOutput);
    return 1;
}
