using System.Globalization;
using System.Runtime.InteropServices;
using Npgsql;

namespace KvWorker.Bench;

/// <summary>Where the figures come from: hardware, OS, runtimes and server versions.</summary>
public static class Machine
{
    public static async Task<List<string>> DescribeAsync(CancellationToken cancellationToken)
    {
        var cpuInfo = File.ReadAllLines("/proc/cpuinfo");
        var model = cpuInfo.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var cpus = cpuInfo.Count(l => l.StartsWith("processor", StringComparison.Ordinal));
        var memoryKb = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var os = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?.Split('=', 2)[1].Trim('"')
            : null;

        string postgres;
        await using (var dataSource = NpgsqlDataSource.Create(Deployment.AdminConnectionString))
        await using (var command = dataSource.CreateCommand("SHOW server_version"))
            postgres = (string)(await command.ExecuteScalarAsync(cancellationToken))!;
        string rabbitMq;
        await using (var client = await RpcClient.ConnectAsync("probe", Deployment.Broker, cancellationToken))
            rabbitMq = client.ServerVersion;

        var revision = Environment.GetEnvironmentVariable("KV_BENCH_REVISION");
        List<string> lines =
        [
            $"- Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC" + (string.IsNullOrEmpty(revision) ? "" : $", revision {revision}"),
            $"- CPU: {model}, {cpus} logical CPUs",
            $"- Memory: {long.Parse(memoryKb, CultureInfo.InvariantCulture) / 1024.0 / 1024.0:0.0} GiB",
            $"- OS: {os ?? RuntimeInformation.OSDescription} (kernel {Environment.OSVersion.Version})",
            $"- .NET: {RuntimeInformation.FrameworkDescription}; PostgreSQL {postgres}; RabbitMQ {rabbitMq}",
            $"- Load average at the start: {LoadAverage()}",
        ];
        if (Deployment.Template is { } template) lines.Add($"- Databases: copies of {template} (KV_BENCH_TEMPLATE), not empty ones");
        return lines;
    }

    /// <summary>The 1, 5 and 15 minute load averages.</summary>
    public static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
