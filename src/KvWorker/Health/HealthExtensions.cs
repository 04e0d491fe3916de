using KvWorker.Storage;

namespace KvWorker.Health;

public static class HealthExtensions
{
    /// <summary>
    /// The HTTP endpoint (which stays off unless <c>Health:Port</c> is set). Readiness checks are
    /// those tagged <see cref="HealthEndpoint.ReadyTag"/>: MassTransit's <c>masstransit-bus</c> and each adapter's own.
    /// </summary>
    public static void AddKvHealth(this IServiceCollection services)
    {
        services.AddOptions<HealthOptions>().BindConfiguration(HealthOptions.Section)
            .RefuseUnknownKeys(HealthOptions.Section)
            .Validate(o => o.Port == 0 || HealthOptions.IsTcpPort(o.Port), $"{HealthOptions.Section}:Port must be a TCP port (1 to 65535), or 0 or unset for no endpoint")
            .ValidateOnStart();
        services.AddHostedService<HealthEndpoint>();
    }

    /// <summary>
    /// <c>KvWorker health [live|ready]</c>: asks the running worker's endpoint on
    /// this machine, for orchestrators that probe with a command (a container
    /// image without curl). Exit 0 when healthy, 1 when not, 2 when the endpoint is off or the check is neither live nor ready.
    /// </summary>
    /// <param name="checks">The command line's words after <c>health</c>: none, or the check.</param>
    public static async Task<int> ProbeAsync(IReadOnlyList<string> checks, IHostApplicationBuilder worker)
    {
        var which = checks is [var named, ..] ? named : "ready";
        if (checks.Count > 1 || which is not ("live" or "ready"))
        {
            // Asked of the endpoint, it would answer 404 and a typo in a probe would read as a worker that is not healthy.
            await Console.Error.WriteLineAsync($"health takes live or ready, not '{string.Join(' ', checks)}'");
            return 2;
        }
        worker.AddKvWorkerConfiguration();
        var port = HealthOptions.ConfiguredPort(worker.Configuration);
        if (!HealthOptions.IsTcpPort(port))
        {
            await Console.Error.WriteLineAsync(port == 0
                ? "Health:Port is not set, so the health endpoint is off"
                : $"Health:Port {port} is not a TCP port, so the worker does not start");
            return 2;
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/health/{which}"));
            Console.WriteLine(await response.Content.ReadAsStringAsync());
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"no answer from the health endpoint on port {port}: {ex.Message}");
            return 1;
        }
    }
}
