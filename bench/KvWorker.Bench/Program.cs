using System.Runtime.InteropServices;
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
// Ctrl-C or a plain kill stops cleanly: processes, virtual hosts and databases are removed on the way out.
// (A run started in the background of a script ignores SIGINT, so SIGTERM is the way to stop it.)
void Stop(PosixSignalContext signal)
{
    signal.Cancel = true;
    stop.Cancel();
}
using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

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
