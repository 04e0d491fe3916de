using MassTransit.Logging;
using MassTransit.Monitoring;
using KvWorker.Health;
using KvWorker.Postgres;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace KvWorker.Telemetry;

public static class TelemetryExtensions
{
    /// <summary>The standard OpenTelemetry setting that switches OTLP exporting on.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary><c>/metrics</c> on the health endpoint's port: served whenever <c>Health:Port</c> is set, unless this is false.</summary>
    public const string PrometheusKey = "Metrics:Prometheus";

    /// <summary>
    /// Metrics (<see cref="KvMetrics"/>, <see cref="PostgresMetrics"/>, MassTransit's and Npgsql's) are
    /// exported over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, and served in Prometheus's
    /// text format at <c>/metrics</c> on the health port (see <see cref="PrometheusKey"/>); traces
    /// (MassTransit's send/receive/consume spans, the worker's group-commit spans linked to them, and
    /// Npgsql's database spans) go over OTLP only. With neither, nothing listens and nothing is
    /// collected. The other standard <c>OTEL_*</c> variables (protocol, headers, service name) apply as usual.
    /// </summary>
    public static void AddKvTelemetry(this IHostApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var otlp = !string.IsNullOrWhiteSpace(configuration[OtlpEndpointKey]);
        var healthPort = HealthOptions.ConfiguredPort(configuration);
        // A port out of range is not listened on: Health:Port's validation stops start-up naming it.
        var prometheus = HealthOptions.IsTcpPort(healthPort) && configuration.GetValue(PrometheusKey, true);
        if (!otlp && !prometheus) return;

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(configuration["OTEL_SERVICE_NAME"] ?? "kvworker"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(KvMetrics.MeterName, PostgresMetrics.MeterName, InstrumentationOptions.MeterName)
                    .AddNpgsqlInstrumentation();
                if (otlp) metrics.AddOtlpExporter();
                if (prometheus) metrics.AddPrometheusHttpListener(options => options.ConfigureHttpListener = (_, listener) =>
                {
                    // The exporter's listener would bind one host name on a port of its own. HttpListeners
                    // of one process share a port, each request going to the longest prefix that matches:
                    // so this one takes /metrics on every address, and the health endpoint every other path.
                    listener.Prefixes.Clear();
                    listener.Prefixes.Add($"http://+:{healthPort}/metrics/");
                });
            });
        if (otlp)
            telemetry.WithTracing(tracing => tracing
                .AddSource(DiagnosticHeaders.DefaultListenerName, GroupCommit.Tracing.Name)
                .AddNpgsql()
                .AddOtlpExporter());
    }
}
