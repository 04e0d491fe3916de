using System.Globalization;

namespace KvWorker.Bench;

/// <summary>
/// CPU time per request, split by process: PostgreSQL (the server listening on the
/// benchmark's port and every backend it forked, those that exited included), RabbitMQ
/// (the broker listening on its port), the service under load (worker replicas or echo
/// service) and this process, the load generator. Read from <c>/proc/&lt;pid&gt;/stat</c>
/// (user + system time) before and after a measured cell.
/// </summary>
public sealed class CpuMeter(int postgresPort, int rabbitMqPort)
{
    private static readonly double TicksPerSecond = 100; // USER_HZ, the unit of /proc/<pid>/stat times on Linux

    public CpuSample Sample(IReadOnlyCollection<int> service) => new(
        PostgresSeconds(), Seconds(ListeningProcess(rabbitMqPort) is { } broker ? [broker] : []),
        Seconds(service), Seconds([Environment.ProcessId]));

    /// <summary>
    /// The postmaster listening on the port and its children (backends, WAL writer, checkpointer, ...).
    /// A child that exits (a backend whose pooled connection was closed, an autovacuum worker) takes
    /// its CPU time with it, which would make a cell's delta short or negative; the postmaster's
    /// times of reaped children (cutime, cstime) hold it from then on.
    /// </summary>
    private double PostgresSeconds()
    {
        if (ListeningProcess(postgresPort) is not { } postmaster || Stat(postmaster) is not { } fields) return 0;
        return Seconds(fields, 13, 14) + Seconds(Processes().Where(pid => pid == postmaster || ParentOf(pid) == postmaster).ToList());
    }

    /// <summary>The process with a socket listening on 127.0.0.1 or any address at <paramref name="port"/>.</summary>
    private static int? ListeningProcess(int port)
    {
        var inodes = new HashSet<string>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists))
        foreach (var line in File.ReadLines(table).Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var localPort = int.Parse(fields[1].Split(':')[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (localPort == port && fields[3] == "0A") inodes.Add(fields[9]); // 0A: LISTEN
        }
        foreach (var pid in Processes())
        {
            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
                    if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal)
                        && inodes.Contains(target[8..^1]))
                        return pid;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to look into.
            }
        }
        return null;
    }

    private static IEnumerable<int> Processes() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(name => name!.All(char.IsAsciiDigit)).Select(name => int.Parse(name!, CultureInfo.InvariantCulture));

    private static int? ParentOf(int pid) => Stat(pid) is { } fields ? int.Parse(fields[1], CultureInfo.InvariantCulture) : null;

    /// <summary>User plus system CPU seconds of the processes (those that exited meanwhile count as nothing).</summary>
    private static double Seconds(IEnumerable<int> pids) =>
        pids.Sum(pid => Stat(pid) is { } fields ? Seconds(fields, 11, 12) : 0);

    /// <summary>The sum of two /proc/pid/stat time fields (user and system), in seconds.</summary>
    private static double Seconds(string[] fields, int user, int system) =>
        (long.Parse(fields[user], CultureInfo.InvariantCulture) + long.Parse(fields[system], CultureInfo.InvariantCulture)) / TicksPerSecond;

    /// <summary>The fields of /proc/pid/stat after the command name (state is [0], ppid [1], utime [11], stime [12], cutime [13], cstime [14]).</summary>
    private static string[]? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return text[(text.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
    }
}

/// <summary>CPU seconds used so far by each process group.</summary>
public sealed record CpuSample(double Postgres, double RabbitMq, double Service, double LoadGenerator)
{
    /// <summary>Microseconds per request between two samples.</summary>
    public CpuPerRequest PerRequest(CpuSample later, long requests) => requests == 0
        ? new CpuPerRequest(0, 0, 0, 0)
        : new CpuPerRequest(
            Micros(later.Postgres - Postgres, requests), Micros(later.RabbitMq - RabbitMq, requests),
            Micros(later.Service - Service, requests), Micros(later.LoadGenerator - LoadGenerator, requests));

    private static double Micros(double seconds, long requests) => seconds * 1_000_000 / requests;
}

/// <summary>CPU microseconds per request by process group.</summary>
public sealed record CpuPerRequest(double Postgres, double RabbitMq, double Service, double LoadGenerator)
{
    public double Total => Postgres + RabbitMq + Service + LoadGenerator;

    public static CpuPerRequest Median(IEnumerable<CpuPerRequest> rounds)
    {
        var all = rounds.ToList();
        return new CpuPerRequest(Stats.MedianOf(all.Select(c => c.Postgres)), Stats.MedianOf(all.Select(c => c.RabbitMq)),
            Stats.MedianOf(all.Select(c => c.Service)), Stats.MedianOf(all.Select(c => c.LoadGenerator)));
    }
}
