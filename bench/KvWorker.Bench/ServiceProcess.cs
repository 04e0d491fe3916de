using System.Diagnostics;
using System.Globalization;

namespace KvWorker.Bench;

/// <summary>
/// A worker replica or the echo service as a separate OS process (<c>dotnet X.dll</c>),
/// configured through environment variables as an operator would.
/// </summary>
public sealed class ServiceProcess : IDisposable
{
    private const int KeptLines = 40;
    private readonly Process _process;
    private readonly Queue<string> _recentOutput = new();

    private string _state = "running";

    private ServiceProcess(string name, Process process)
    {
        Name = name;
        _process = process;
        Id = process.Id;
        lock (Started) Started.Add(this);
    }

    /// <summary>Every process this run started, so a failure can show what they printed.</summary>
    public static List<ServiceProcess> Started { get; } = [];

    public string Name { get; }
    public int Id { get; }

    /// <summary>
    /// Starts <paramref name="dll"/>, in its own directory: a path relative to this program's directory,
    /// where the worker's build is copied too, or an absolute one (another build).
    /// </summary>
    public static ServiceProcess Start(string name, string dll, IEnumerable<string> arguments, IDictionary<string, string?> settings)
    {
        var path = Path.Combine(AppContext.BaseDirectory, dll);
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(path),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(path);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (key, value) in settings)
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        var service = new ServiceProcess(name, Process.Start(start) ?? throw new InvalidOperationException($"could not start {name}"));
        service._process.OutputDataReceived += (_, line) => service.Keep(line.Data);
        service._process.ErrorDataReceived += (_, line) => service.Keep(line.Data);
        service._process.BeginOutputReadLine();
        service._process.BeginErrorReadLine();
        return service;
    }

    /// <summary>The last lines the process printed, for failure messages.</summary>
    public string RecentOutput
    {
        get
        {
            lock (_recentOutput)
                return $"--- {Name} (pid {Id}, {_state}) ---\n" + string.Join('\n', _recentOutput);
        }
    }

    /// <summary>Resident set now and its peak so far (VmRSS, VmHWM from /proc), in bytes.</summary>
    public (long Resident, long Peak) Memory()
    {
        long resident = 0, peak = 0;
        foreach (var line in File.ReadLines($"/proc/{Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) resident = Kilobytes(line) * 1024;
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kilobytes(line) * 1024;
        }
        return (resident, peak);
    }

    private static long Kilobytes(string statusLine) =>
        long.Parse(statusLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_recentOutput)
        {
            _recentOutput.Enqueue(line);
            if (_recentOutput.Count > KeptLines) _recentOutput.Dequeue();
        }
    }

    /// <summary>SIGTERM, as an orchestrator stops a replica; killed if it has not exited within 15 s.</summary>
    public void Dispose()
    {
        if (_process.HasExited)
            _state = $"had exited with {_process.ExitCode}";
        else
        {
            using (var term = Process.Start("kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]))
                term.WaitForExit();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(15)))
                _process.Kill(entireProcessTree: true);
            _state = "stopped";
        }
        _process.Dispose();
    }
}
