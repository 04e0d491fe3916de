using System.Diagnostics;
using System.Text;

namespace KvWorker.Tests.Cli;

/// <summary>The <c>kv</c> command-line client as a separate process, exactly as a person runs it.</summary>
public sealed class KvCliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errors = new();

    private KvCliProcess(Process process) => _process = process;

    public static KvCliProcess Start(Uri amqpUri, string? standardInput, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "kv.dll"));
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["KV_RABBITMQ_URL"] = amqpUri.ToString();
        var cli = new KvCliProcess(Process.Start(start) ?? throw new InvalidOperationException("could not start kv"));
        cli._process.OutputDataReceived += (_, line) => Append(cli._output, line.Data);
        cli._process.ErrorDataReceived += (_, line) => Append(cli._errors, line.Data);
        cli._process.BeginOutputReadLine();
        cli._process.BeginErrorReadLine();
        if (standardInput is not null) cli._process.StandardInput.Write(standardInput);
        cli._process.StandardInput.Close();
        return cli;
    }

    /// <summary>Runs one command to its end.</summary>
    public static async Task<KvCliResult> RunAsync(Uri amqpUri, params string[] arguments) =>
        await RunWithInputAsync(amqpUri, null, arguments);

    public static async Task<KvCliResult> RunWithInputAsync(Uri amqpUri, string? standardInput, params string[] arguments)
    {
        using var cli = Start(amqpUri, standardInput, arguments);
        return await cli.WaitForExitAsync(TimeSpan.FromSeconds(60));
    }

    public string Output => Read(_output);
    public string Errors => Read(_errors);

    public async Task<KvCliResult> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _process.WaitForExit(); // drains the redirected streams
        return new KvCliResult(_process.ExitCode, Output, Errors);
    }

    /// <summary>Waits until stderr contains <paramref name="text"/>, e.g. the line saying events are being followed.</summary>
    public async Task WaitForErrorTextAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Errors.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
                throw new TimeoutException($"kv did not print '{text}'; stdout:\n{Output}\nstderr:\n{Errors}");
            await Task.Delay(100);
        }
    }

    private static void Append(StringBuilder buffer, string? line)
    {
        if (line is null) return;
        lock (buffer) buffer.AppendLine(line);
    }

    private static string Read(StringBuilder buffer)
    {
        lock (buffer) return buffer.ToString();
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}

public sealed record KvCliResult(int ExitCode, string Output, string Errors)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Errors}";
}
