using KvWorker.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvWorker.Tests.Configuration;

public sealed class PolicyConfigurationTests
{
    private const string KvStore = "tools:kv_store";

    private static KvStoreOptions Bind(params string[] files)
    {
        var builder = new ConfigurationBuilder();
        foreach (var file in files) builder.AddJsonFile(Path.Combine(AppContext.BaseDirectory, file));
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(builder.Build())
            .AddOptions<KvStoreOptions>().BindConfiguration(KvStoreOptions.Section).Services
            .BuildServiceProvider()
            .GetRequiredService<IOptions<KvStoreOptions>>().Value;
    }

    [Fact]
    public void The_shipped_configuration_grants_no_identity_anything()
    {
        var options = Bind("appsettings.json");

        Assert.Empty(options.Identities);
        Assert.Null(options.Anonymous);
        Assert.Empty(options.Personas);
    }

    [Fact]
    public void The_development_configuration_grants_the_guest_user_a_persona_that_reads_and_writes()
    {
        var options = Bind("appsettings.json", "appsettings.Development.json");

        var guest = options.Identities["guest"];
        Assert.Equal("developer", guest.DefaultPersona);
        Assert.Equal(["developer"], guest.Personas);
        Assert.Equal([KvStoreManifest.ReadFlag, KvStoreManifest.WriteFlag], options.Personas["developer"].Flags);
        Assert.Empty(options.Personas["developer"].Namespaces);
        Assert.Null(options.Anonymous);
    }

    private static Dictionary<string, string?> Settings(params (string Key, string Value)[] policy)
    {
        var settings = new Dictionary<string, string?>
        {
            [$"{KvStore}:adapters:postgres:url"] = "postgresql://u@localhost/db",
            [$"{KvStore}:personas:reader:flags:0"] = KvStoreManifest.ReadFlag,
        };
        foreach (var (key, value) in policy) settings[$"{KvStore}:{key}"] = value;
        return settings;
    }

    [Theory]
    [InlineData("personas:reader:flags:1", "type.system.kv_store_admin", "",
        "tools:kv_store:personas:reader:flags:1 must be type.system.kv_store_access or type.system.kv_store_write, not 'type.system.kv_store_admin'")]
    [InlineData("personas:reader:namespaces:0", "", "",
        "tools:kv_store:personas:reader:namespaces:0 must be a non-empty namespace pattern")]
    [InlineData("personas:reader:provider", "redis", "",
        "tools:kv_store:personas:reader:provider must name a registered adapter (postgres), not 'redis'")]
    [InlineData("identities:alice:personas:0", "writer", "",
        "tools:kv_store:identities:alice:personas:0 must name a persona configured under tools:kv_store:personas, not 'writer'")]
    [InlineData("identities:alice:personas:0", "reader", "identities:alice:default_persona=writer",
        "tools:kv_store:identities:alice:default_persona must be one of tools:kv_store:identities:alice:personas, not 'writer'")]
    [InlineData("anonymous:personas:0", "ghost", "",
        "tools:kv_store:anonymous:personas:0 must name a persona configured under tools:kv_store:personas, not 'ghost'")]
    // A list written as one value, which binding drops: namespace patterns lost would open every namespace.
    [InlineData("personas:reader:namespaces", "team-a-*", "",
        "tools:kv_store:personas:reader:namespaces must be a list, not the single value 'team-a-*'")]
    [InlineData("personas:reader:namespaces", "", "",
        "tools:kv_store:personas:reader:namespaces is an empty list, which would allow every namespace")]
    [InlineData("personas:writer:flags", "type.system.kv_store_write", "",
        "tools:kv_store:personas:writer:flags must be a list, not the single value 'type.system.kv_store_write'")]
    [InlineData("identities:alice:personas", "reader", "",
        "tools:kv_store:identities:alice:personas must be a list, not the single value 'reader'")]
    [InlineData("anonymous:personas", "reader", "",
        "tools:kv_store:anonymous:personas must be a list, not the single value 'reader'")]
    // A misspelt key, which binding skips: a persona's "namespace" would leave it every namespace.
    [InlineData("personas:reader:namespace:0", "team-a-*", "",
        "tools:kv_store:personas:reader:namespace is not a setting the worker reads (tools:kv_store:personas:reader takes provider, flags, namespaces)")]
    [InlineData("identities:alice:personas:0", "reader", "identities:alice:default-persona=reader",
        "tools:kv_store:identities:alice:default-persona is not a setting the worker reads (tools:kv_store:identities:alice takes personas, default_persona)")]
    [InlineData("anonymous:persona", "reader", "",
        "tools:kv_store:anonymous:persona is not a setting the worker reads (tools:kv_store:anonymous takes personas, default_persona)")]
    public void Invalid_policy_configuration_fails_validation_naming_the_key(string key, string value, string extra, string message)
    {
        var settings = Settings((key, value));
        if (extra.Length > 0) settings[$"{KvStore}:{extra.Split('=')[0]}"] = extra.Split('=')[1];

        var error = Assert.Throws<OptionsValidationException>(() => ConfigurationTests.Validate(settings));

        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void A_consistent_policy_configuration_is_accepted()
    {
        var options = ConfigurationTests.Validate(Settings(
            ("personas:reader:namespaces:0", "team-a-*"),
            ("identities:alice:personas:0", "reader"),
            ("identities:alice:default_persona", "reader"),
            ("anonymous:personas:0", "reader")));

        Assert.Equal(["team-a-*"], options.Personas["reader"].Namespaces);
        Assert.Equal(["reader"], options.Anonymous!.Personas);
        Assert.Null(options.Anonymous.DefaultPersona);
    }
}
