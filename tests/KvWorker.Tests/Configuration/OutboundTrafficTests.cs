using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvWorker.Tests.Configuration;

/// <summary>The worker contacts nothing it was not configured to: no usage report to MassTransit's vendor.</summary>
[Collection(DatabaseCollection.Name)]
public sealed class OutboundTrafficTests(DatabaseFixture db)
{
    [Fact]
    public void The_bus_is_configured_without_masstransit_usage_telemetry()
    {
        using var host = BrokerFixture.BuildWorker(new Dictionary<string, string?>
        {
            ["tools:kv_store:adapters:postgres:url"] = db.ConnectionString,
        });
        var optionsType = typeof(IBus).Assembly.GetTypes().Concat(typeof(IBusRegistrationConfigurator).Assembly.GetTypes())
            .Single(type => type.Name == "UsageTelemetryOptions");
        var options = host.Services.GetRequiredService(typeof(IOptions<>).MakeGenericType(optionsType));

        var value = options.GetType().GetProperty("Value")!.GetValue(options)!;

        Assert.Equal(false, optionsType.GetProperty("Enabled")!.GetValue(value));
    }
}
