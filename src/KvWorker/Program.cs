using KvWorker;

// appsettings.json ships beside the binaries; config.yaml is read from the working directory.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddKvWorker();
await builder.Build().RunAsync();
