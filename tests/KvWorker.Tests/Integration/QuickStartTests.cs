
namespace KvWorker.Tests.Integration;

/// <summary>
/// A worker process configured like scripts/run.sh runs it: the Development
/// environment and nothing else about the policy, so only appsettings.Development.json
/// grants RabbitMQ's guest user its persona.
/// </summary>
public sealed class DevelopmentWorkerFixture : BrokerFixture
{
    private WorkerProcess? _worker;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var settings = WorkerSettings()
            .Where(setting => !setting.Key.StartsWith("tools:kv_store:personas", StringComparison.Ordinal)
                && !setting.Key.StartsWith("tools:kv_store:identities", StringComparison.Ordinal))
            .ToDictionary();
        settings["DOTNET_ENVIRONMENT"] = "Development";
        settings.Remove("Serilog:MinimumLevel:Default"); // the shipped log level, as scripts/run.sh has it
        _worker = WorkerProcess.Start(settings);
        try
        {
            foreach (var queue in new[] { KvOperations.Get.Queue, KvOperations.Set.Queue, KvOperations.Increment.Queue })
                await WaitForConsumersAsync(queue, 1, TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}\nworker:\n{_worker.Output}", ex);
        }
    }

    /// <summary>What the worker process logged so far.</summary>
    public string Output => _worker!.Output;

    public override async Task DisposeAsync()
    {
        _worker?.Dispose();
        await base.DisposeAsync();
    }
}

public sealed class QuickStartTests : IClassFixture<DevelopmentWorkerFixture>
{
    private readonly DevelopmentWorkerFixture _fixture;

    public QuickStartTests(DevelopmentWorkerFixture fixture) => _fixture = fixture;

    [Fact]
    public async Task The_guest_user_runs_the_readme_requests_under_the_development_configuration()
    {
        Assert.Equal("guest", _fixture.BrokerUser.User); // the identity appsettings.Development.json grants
        await using var client = await _fixture.RawClientAsync();
        var ns = "researcher-" + Guid.NewGuid().ToString("N");

        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "plan", value = new { step = 1 }, ttl_seconds = 3600 });
        var plan = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "plan" });
        var turns = await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "turns" });

        Assert.Equal(1, plan.GetProperty("value").GetProperty("step").GetInt32());
        Assert.Equal(1, turns.GetProperty("value").GetInt64());
    }

    [Fact]
    public async Task The_log_says_once_when_the_worker_is_connected_and_consuming_every_queue()
    {
        var broker = _fixture.Broker;
        var expected = $"INF] Connected to RabbitMQ ({broker.Host}:{broker.Port}), virtual host {Uri.UnescapeDataString(_fixture.AmqpUri.AbsolutePath.TrimStart('/'))}; " +
            "consuming " + string.Join(", ", KvOperations.All.Select(operation => operation.Queue)) + " (classic queues)";
        for (var waited = 0; waited < 100 && !_fixture.Output.Contains(expected, StringComparison.Ordinal); waited++)
            await Task.Delay(100);

        Assert.Single(_fixture.Output.Split('\n'), line => line.Contains("Connected to RabbitMQ", StringComparison.Ordinal));
        Assert.Contains(expected, _fixture.Output);
    }

    [Fact]
    public async Task Without_user_id_even_the_development_configuration_denies()
    {
        await using var client = await _fixture.RawClientAsync(sendUserId: false);

        var ns = "researcher-" + Guid.NewGuid().ToString("N");

        var reply = await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "plan" });

        Assert.Equal("AccessDeniedError", reply.GetProperty("error").GetProperty("code").GetString());
        await Task.Delay(500);
        Assert.Contains($"WRN] Denied kv_get on namespace {ns} to identity (no user_id): a request without user_id is not granted any persona", _fixture.Output);
    }

    [Fact]
    public async Task A_malformed_request_is_logged_as_one_warning_line_without_a_stack_trace()
    {
        await using var client = await _fixture.RawClientAsync();
        var messageId = Guid.NewGuid().ToString();

        var reply = await client.CallRawAsync(KvOperations.Set.Queue, "{\"namespace\": 5}"u8.ToArray(), messageId);

        Assert.Equal("KeyValueStoreError", reply.GetProperty("error").GetProperty("code").GetString());
        await Task.Delay(500);
        var lines = _fixture.Output.Split('\n').Where(line => line.Contains(messageId, StringComparison.Ordinal)).ToList();
        var line = Assert.Single(lines);
        Assert.Contains("WRN] Rejected a malformed request on", line);
        Assert.Contains("$.namespace", line);
        Assert.DoesNotContain("R-FAULT", _fixture.Output);
        Assert.DoesNotContain("   at ", _fixture.Output);
    }
}
