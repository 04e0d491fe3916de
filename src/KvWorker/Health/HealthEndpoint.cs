using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace KvWorker.Health;

/// <summary>The <c>Health</c> section. The endpoint is off unless a port is set.</summary>
public sealed class HealthOptions
{
    public const string Section = "Health";

    /// <summary>TCP port of the HTTP health endpoint; unset or 0 leaves it off.</summary>
    public int Port { get; set; }

    /// <summary>Whether <paramref name="port"/> is one the endpoint can listen on: 1 to 65535.</summary>
    public static bool IsTcpPort(int port) => port is > 0 and <= 65535;

    /// <summary><c>Health:Port</c> as configured, 0 when unset: for what reads it before options are bound.</summary>
    public static int ConfiguredPort(IConfiguration configuration) => configuration.GetValue<int>($"{Section}:{nameof(Port)}");
}

/// <summary>
/// A tiny HTTP listener for orchestrators: <c>/health/live</c> answers 200 while
/// the process runs; <c>/health/ready</c> runs the checks tagged <c>ready</c>
/// (PostgreSQL, Redis when configured, and MassTransit's <c>masstransit-bus</c>) and answers 200 when all
/// are healthy, 503 otherwise, with each check's status as JSON.
/// </summary>
public sealed class HealthEndpoint(IOptions<HealthOptions> options, HealthCheckService health, ILogger<HealthEndpoint> logger)
    : BackgroundService
{
    public const string ReadyTag = "ready";

    private HttpListener? _listener;

    /// <summary>Listens before the host reports started, so a probe right after start is answered and a taken port stops start-up.</summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var port = options.Value.Port;
        if (HealthOptions.IsTcpPort(port))
        {
            _listener = new HttpListener();
            _listener.Prefixes.Add($"http://+:{port}/");
            _listener.Start();
            logger.LogInformation("Health endpoint listening on port {Port}: /health/live, /health/ready", port);
        }
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_listener is not { } listener) return;
        await using var stop = stoppingToken.Register(listener.Stop);
        while (!stoppingToken.IsCancellationRequested)
        {
            HttpListenerContext request;
            try
            {
                request = await listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException && stoppingToken.IsCancellationRequested)
            {
                break; // stopped
            }
            _ = AnswerAsync(request, stoppingToken);
        }
    }

    public override void Dispose()
    {
        // Base first: it cancels ExecuteAsync's token, whose callback stops the listener, which must not be closed yet
        // (a host disposed without being stopped, as after a failed start, would otherwise crash on it).
        base.Dispose();
        _listener?.Close();
    }

    private async Task AnswerAsync(HttpListenerContext request, CancellationToken cancellationToken)
    {
        var response = request.Response;
        try
        {
            var (status, body) = request.Request.Url?.AbsolutePath switch
            {
                "/health/live" => (HttpStatusCode.OK, new { status = nameof(HealthStatus.Healthy) } as object),
                "/health/ready" => await ReadinessAsync(cancellationToken),
                _ => (HttpStatusCode.NotFound, new { status = "unknown path: use /health/live or /health/ready" }),
            };
            response.StatusCode = (int)status;
            response.ContentType = "application/json";
            await response.OutputStream.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(body), cancellationToken);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "Health request failed");
            response.StatusCode = (int)HttpStatusCode.InternalServerError;
        }
        finally
        {
            response.Close();
        }
    }

    private async Task<(HttpStatusCode, object)> ReadinessAsync(CancellationToken cancellationToken)
    {
        var report = await health.CheckHealthAsync(check => check.Tags.Contains(ReadyTag), cancellationToken);
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(entry => entry.Key, entry => new
            {
                status = entry.Value.Status.ToString(),
                description = entry.Value.Description ?? entry.Value.Exception?.Message,
            }),
        };
        return (report.Status == HealthStatus.Healthy ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, body);
    }
}
