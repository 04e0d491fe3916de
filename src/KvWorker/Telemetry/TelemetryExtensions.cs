using MassTransit.Logging;
using MassTransit.Monitoring;
using KvWorker.Postgres;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace KvWorker.Telemetry;

public static class TelemetryExtensions
{
    /// <summary>The standard OpenTelemetry setting that switches exporting on.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Traces (MassTransit's send/receive/consume spans, the worker's group-commit
    /// spans linked to them, and Npgsql's database spans) and metrics (<see cref="KvMetrics"/>, MassTransit's and Npgsql's)
    /// exported over OTLP, only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set;
    /// otherwise nothing listens and nothing is collected. The other standard
    /// <c>OTEL_*</c> variables (protocol, headers, service name) apply as usual.
    /// </summary>
    public static void AddKvTelemetry(this IHostApplicationBuilder builder)
    {
        if (string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointKey])) return;

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "kvworker"))
            .WithTracing(tracing => tracing
                .AddSource(DiagnosticHeaders.DefaultListenerName, GroupCommit.Tracing.Name)
                .AddNpgsql()
                .AddOtlpExporter())
            .WithMetrics(metrics => metrics
                .AddMeter(KvMetrics.MeterName, InstrumentationOptions.MeterName)
                .AddNpgsqlInstrumentation()
                .AddOtlpExporter());
    }
}
