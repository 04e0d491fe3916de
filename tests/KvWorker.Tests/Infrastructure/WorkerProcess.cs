using System.Diagnostics;
using System.Text;

namespace KvWorker.Tests.Infrastructure;

/// <summary>The worker as a separate OS process (a replica), configured through environment variables.</summary>
public sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private WorkerProcess(Process process) => _process = process;

    /// <param name="settings">Configuration keys, passed as the environment variables .NET maps to them.</param>
    /// <param name="rawEnvironment">Environment variables set as they are (ATLAS_KV_*, ...).</param>
    public static WorkerProcess Start(IDictionary<string, string?> settings, IDictionary<string, string?>? rawEnvironment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "KvWorker.dll"));
        foreach (var (key, value) in settings)
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        foreach (var (name, value) in rawEnvironment ?? new Dictionary<string, string?>())
            start.Environment[name] = value;
        var worker = new WorkerProcess(Process.Start(start) ?? throw new InvalidOperationException("could not start a worker process"));
        worker._process.OutputDataReceived += (_, line) => worker.Append(line.Data);
        worker._process.ErrorDataReceived += (_, line) => worker.Append(line.Data);
        worker._process.BeginOutputReadLine();
        worker._process.BeginErrorReadLine();
        return worker;
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Sends SIGTERM, as an orchestrator does to stop a replica.</summary>
    public void Terminate() => Signal("TERM");

    /// <summary>Sends SIGKILL: the replica dies at once, with whatever it held.</summary>
    public void Kill() => Signal("KILL");

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }
    public int ExitCode => _process.ExitCode;

    /// <summary>What the process printed so far, for failure messages.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public async Task WaitForExitAsync(TimeSpan timeout) => await _process.WaitForExitAsync().WaitAsync(timeout);

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
