namespace KvWorker.Cli;

/// <summary>Process exit codes, documented in <c>kv --help</c> and the README.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The worker answered with an error (quota, invalid value, ...).</summary>
    public const int WorkerError = 1;
    /// <summary>The command line or a value given on it is invalid.</summary>
    public const int Usage = 2;
    /// <summary>
    /// RabbitMQ cannot be reached or refused (login, virtual host, no such queue), no worker answered in time,
    /// or the reply is not a worker's (not JSON: another program answered on the queue).
    /// </summary>
    public const int Unreachable = 3;
    /// <summary><c>kv get</c> of a key that does not exist (or has expired).</summary>
    public const int NotFound = 4;
}

/// <summary>A failure the CLI reports as one line on stderr and an exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
