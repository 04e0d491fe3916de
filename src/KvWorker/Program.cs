using KvWorker;
using KvWorker.Health;
using Microsoft.Extensions.Options;

if (args is ["health", .. var probeArgs]) return await HealthExtensions.ProbeAsync(probeArgs);

// appsettings.json ships beside the binaries; config.yaml is read from the working directory.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddKvWorker();
try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (OptionsValidationException ex)
{
    await Console.Error.WriteLineAsync("Invalid configuration:\n  " + string.Join("\n  ", ex.Failures));
    return 2;
}
