using System.Globalization;
using KvWorker.Configuration;
using KvWorker.Health;
using KvWorker.Redis;
using KvWorker.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using YamlDotNet.RepresentationModel;

namespace KvWorker.Tests.Configuration;

/// <summary>
/// docker-compose.yml, the Dockerfile and Prometheus's configuration against the code: a
/// misspelt variable is silently ignored by .NET's configuration, so every variable a worker
/// container gets must be one the worker reads, with a value it accepts, and the ports and the
/// grace period on stopping must agree.
/// </summary>
public sealed class DeploymentFilesTests
{
    private static readonly string Deployment = Path.Combine(AppContext.BaseDirectory, "deployment");

    /// <summary>The configuration sections the worker binds, each to its options class.</summary>
    private static readonly Dictionary<string, Type> BoundSections = new()
    {
        [KvStoreOptions.Section] = typeof(KvStoreOptions),
        [PostgresAdapterOptions.Section] = typeof(PostgresAdapterOptions),
        [RedisAdapterOptions.Section] = typeof(RedisAdapterOptions),
        [KvLimits.Section] = typeof(KvLimits),
        [RabbitMqOptions.Section] = typeof(RabbitMqOptions),
        [WorkerOptions.Section] = typeof(WorkerOptions),
        [HealthOptions.Section] = typeof(HealthOptions),
    };

    public static TheoryData<string> WorkerServices() => new(WorkerServiceNames());

    [Theory]
    [MemberData(nameof(WorkerServices))]
    public void Every_variable_a_worker_container_gets_is_one_the_worker_reads(string service)
    {
        var environment = ContainerEnvironment(service);

        Assert.NotEmpty(environment);
        Assert.All(environment, variable => Assert.True(IsRead(variable.Key, variable.Value, out var problem), $"{service}: {variable.Key}={variable.Value}: {problem}"));
    }

    [Theory]
    [MemberData(nameof(WorkerServices))]
    public void A_worker_container_s_configuration_passes_the_worker_s_validation(string service)
    {
        var configuration = WorkerConfiguration(ContainerEnvironment(service));
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddKvStore(configuration);
        services.AddKvHealth();
        using var provider = services.BuildServiceProvider();

        // Reading an options value runs its validation, as start-up does.
        _ = provider.GetRequiredService<IOptions<KvStoreOptions>>().Value;
        _ = provider.GetRequiredService<IOptions<PostgresAdapterOptions>>().Value;
        _ = provider.GetRequiredService<IOptions<RedisAdapterOptions>>().Value;
        _ = provider.GetRequiredService<IOptions<KvLimits>>().Value;
        _ = provider.GetRequiredService<IOptions<WorkerOptions>>().Value;
        Assert.NotEmpty(provider.GetRequiredService<IOptions<RabbitMqOptions>>().Value.Nodes());
        Assert.True(HealthOptions.IsTcpPort(provider.GetRequiredService<IOptions<HealthOptions>>().Value.Port), $"{service} has no health endpoint for its probe");
    }

    [Theory]
    [MemberData(nameof(WorkerServices))]
    public void Docker_waits_for_a_worker_container_to_stop_as_long_as_the_worker_s_grace_period(string service)
    {
        var configuration = WorkerConfiguration(ContainerEnvironment(service));
        var grace = configuration.GetSection(WorkerOptions.Section).Get<WorkerOptions>() ?? new WorkerOptions();

        // Docker sends SIGKILL after stop_grace_period, 10 s when unset.
        Assert.True(ComposeServices()[service].Children.TryGetValue("stop_grace_period", out var period), $"{service} has no stop_grace_period: Docker waits 10 s");
        Assert.True(ComposeDuration(period.ToString()) >= TimeSpan.FromSeconds(grace.ShutdownTimeoutSeconds),
            $"{service}: stop_grace_period {period} is shorter than the worker's {grace.ShutdownTimeoutSeconds} s");
    }

    [Fact]
    public void The_image_serves_health_on_the_port_it_exposes_and_runs_and_probes_the_worker()
    {
        var image = DockerfileInstructions().ToLookup(instruction => instruction.Name, instruction => instruction.Arguments);
        var worker = typeof(HealthOptions).Assembly.GetName().Name + ".dll";

        var healthPort = ImageEnvironment()[$"{HealthOptions.Section}__{nameof(HealthOptions.Port)}"];
        Assert.Contains(healthPort, image["EXPOSE"].SelectMany(ports => ports.Split(' ')));
        Assert.Equal(new[] { "dotnet", worker }, JsonSerializer.Deserialize<string[]>(image["ENTRYPOINT"].Single()));
        var healthCheck = image["HEALTHCHECK"].Single();
        Assert.Equal(new[] { "dotnet", worker, "health", "ready" }, JsonSerializer.Deserialize<string[]>(healthCheck[(healthCheck.IndexOf("CMD ", StringComparison.Ordinal) + 4)..]));
    }

    [Fact]
    public void Prometheus_scrapes_the_worker_replicas_on_the_port_that_serves_their_metrics()
    {
        var prometheus = LoadYaml(Path.Combine(Deployment, "prometheus.yml"));
        var job = Assert.Single(((YamlSequenceNode)prometheus["scrape_configs"]).Cast<YamlMappingNode>());
        var discovery = (YamlMappingNode)Assert.Single((YamlSequenceNode)job["dns_sd_configs"]);

        Assert.Equal("kvworker", job["job_name"].ToString()); // the dashboard's up{job="kvworker"}
        Assert.False(job.Children.ContainsKey("metrics_path"), "the worker serves /metrics, Prometheus's default path");
        var names = ((YamlSequenceNode)discovery["names"]).Select(name => name.ToString()).ToList();
        Assert.All(names, name => Assert.Contains(name, WorkerServiceNames()));
        Assert.All(names, name => Assert.Equal(ContainerEnvironment(name)["Health__Port"], discovery["port"].ToString()));
    }

    /// <summary>Whether the worker reads this environment variable and can take its value; if not, why.</summary>
    private static bool IsRead(string variable, string value, out string problem)
    {
        problem = "";
        if (variable.StartsWith("ATLAS_KV_", StringComparison.Ordinal))
        {
            problem = "not one of the ATLAS_KV_* variables the worker reads";
            return AtlasEnvironment.KeysByVariable.ContainsKey(variable);
        }
        if (variable == "DOTNET_ENVIRONMENT")
        {
            problem = $"the worker ships no appsettings.{value}.json";
            return value == "Production" || File.Exists(Path.Combine(AppContext.BaseDirectory, $"appsettings.{value}.json"));
        }
        if (variable.StartsWith("OTEL_", StringComparison.Ordinal)) return true; // OpenTelemetry's own variables

        var key = variable.Replace("__", ":", StringComparison.Ordinal);
        if (string.Equals(key, TelemetryExtensions.PrometheusKey, StringComparison.OrdinalIgnoreCase))
        {
            problem = "not true or false";
            return bool.TryParse(value, out _);
        }
        var section = BoundSections.Keys
            .Where(name => key.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            .MaxBy(name => name.Length);
        if (section is null)
        {
            problem = "in no configuration section the worker reads";
            return false;
        }
        // Binding throws on a key no property of the options class takes, and on a value it cannot convert.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build();
        try
        {
            configuration.GetSection(section).Get(BoundSections[section], binder => binder.ErrorOnUnknownConfiguration = true);
            return true;
        }
        catch (InvalidOperationException ex)
        {
            problem = ex.Message;
            return false;
        }
    }

    /// <summary>The worker's configuration in a container with this environment, from the same sources the worker reads.</summary>
    private static ConfigurationManager WorkerConfiguration(IReadOnlyDictionary<string, string> environment)
    {
        var configuration = new ConfigurationManager();
        configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"));
        if (environment.TryGetValue("DOTNET_ENVIRONMENT", out var name))
            configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, $"appsettings.{name}.json"), optional: name == "Production");
        configuration.AddInMemoryCollection(environment
            .Where(variable => !AtlasEnvironment.KeysByVariable.ContainsKey(variable.Key))
            .Select(variable => new KeyValuePair<string, string?>(variable.Key.Replace("__", ":", StringComparison.Ordinal), variable.Value)));
        configuration.AddKvStoreConfiguration(Directory.CreateTempSubdirectory().FullName, environment.GetValueOrDefault);
        return configuration;
    }

    /// <summary>A compose duration such as 30s, 2m or 1m30s.</summary>
    private static TimeSpan ComposeDuration(string text)
    {
        var parts = System.Text.RegularExpressions.Regex.Matches(text, "([0-9]+)(h|m|s)");
        Assert.Equal(text, string.Concat(parts.Select(part => part.Value)));
        return parts.Aggregate(TimeSpan.Zero, (total, part) => total + int.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture) * part.Groups[2].Value switch
        {
            "h" => TimeSpan.FromHours(1),
            "m" => TimeSpan.FromMinutes(1),
            _ => TimeSpan.FromSeconds(1),
        });
    }

    /// <summary>A compose service's environment over the image's, as the container sees it.</summary>
    private static Dictionary<string, string> ContainerEnvironment(string service)
    {
        var environment = ImageEnvironment();
        if (ComposeServices()[service].Children.TryGetValue("environment", out var variables))
        {
            foreach (var (name, value) in (YamlMappingNode)variables) environment[name.ToString()] = value.ToString();
        }
        return environment;
    }

    /// <summary>The compose services built from the Dockerfile: the worker's.</summary>
    private static IEnumerable<string> WorkerServiceNames() =>
        ComposeServices().Where(service => service.Value.Children.ContainsKey("build")).Select(service => service.Key);

    private static Dictionary<string, YamlMappingNode> ComposeServices() =>
        ((YamlMappingNode)LoadYaml(Path.Combine(Deployment, "docker-compose.yml"))["services"])
            .ToDictionary(service => service.Key.ToString(), service => (YamlMappingNode)service.Value);

    /// <summary>The Dockerfile's ENV NAME=VALUE settings (of its last stage, the image's: the build stage sets none).</summary>
    private static Dictionary<string, string> ImageEnvironment() =>
        DockerfileInstructions()
            .Where(instruction => instruction.Name == "ENV")
            .SelectMany(instruction => instruction.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(setting => setting.Split('=', 2))
            .ToDictionary(setting => setting[0], setting => setting[1]);

    private static IEnumerable<(string Name, string Arguments)> DockerfileInstructions() =>
        File.ReadAllText(Path.Combine(Deployment, "Dockerfile"))
            .ReplaceLineEndings("\n")
            .Replace("\\\n", " ", StringComparison.Ordinal) // an instruction continued on the next line
            .Split('\n')
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.Split(' ', 2))
            .Select(parts => (parts[0].ToUpper(CultureInfo.InvariantCulture), parts.Length > 1 ? parts[1] : ""));

    private static YamlMappingNode LoadYaml(string path)
    {
        var yaml = new YamlStream();
        using var reader = File.OpenText(path);
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }
}
