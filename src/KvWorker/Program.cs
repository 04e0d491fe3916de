using KvWorker;
using KvWorker.Configuration;
using KvWorker.Health;
using KvWorker.Postgres;
using Microsoft.Extensions.Options;

HostApplicationBuilder? builder = null;
try
{
    // appsettings.json ships beside the binaries; config.yaml is read from the working directory.
    // Inside the try: creating the builder reads the appsettings files, which may not parse.
    builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
    // Words are what configuration skips: the command, before or after the settings.
    var words = CommandLine.Words(args).ToList();
    // The health command finds the port where the worker does, in every source of its configuration.
    if (words is ["health", .. var checks]) return await HealthExtensions.ProbeAsync(checks, builder);
    // A mistyped command would otherwise start a worker.
    if (words is [var word, ..])
    {
        await Console.Error.WriteLineAsync($"KvWorker takes settings (--Key=value) and the command health [live|ready], not '{word}'");
        return 2;
    }
    // Putting the host together reads some settings already (Health:Port, Worker:ShutdownTimeoutSeconds).
    builder.AddKvWorker();
    var host = builder.Build();
    // Before the host starts, which would log the failure with a stack trace first.
    host.Services.GetService<IStartupValidator>()?.Validate();
    var configurationLog = host.Services.GetRequiredService<ILogger<KvStoreOptions>>();
    foreach (var unknown in KvStoreOptionsValidator.UnknownBlockKeys(builder.Configuration)) configurationLog.LogWarning("{Unknown}; ignored", unknown);
    await host.RunAsync();
    return Environment.ExitCode; // 0, or 2 when RabbitMQ refused the configured queue type (Amqp/QueueTypeCheck)
}
catch (PostgresStartupException refused)
{
    // One line, as for invalid configuration: the host's own log of it, with a stack trace, is left out (AddKvWorker).
    await Console.Error.WriteLineAsync($"Cannot start: {refused.Message}");
    return 3;
}
catch (Exception ex) when (ConfigurationErrors.Explain(ex, builder?.Configuration) is { } failures)
{
    await Console.Error.WriteLineAsync("Invalid configuration:\n  " + string.Join("\n  ", failures));
    return 2;
}
