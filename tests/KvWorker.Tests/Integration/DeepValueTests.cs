using System.Text;
using MassTransit;

namespace KvWorker.Tests.Integration;

/// <summary>A worker of its own with limits:max_value_depth at the highest it may be set to.</summary>
public sealed class DeepValuesFixture : WorkerFixture
{
    protected override Task<IDictionary<string, string?>?> PrepareWorkerAsync() =>
        Task.FromResult<IDictionary<string, string?>?>(new Dictionary<string, string?>
        {
            ["tools:kv_store:limits:max_value_depth"] = KvJsonDepth.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
}

[CollectionDefinition(Name)]
public sealed class DeepValuesCollection : ICollectionFixture<DeepValuesFixture>
{
    public const string Name = "deep values";
}

/// <summary>Values as deep as limits:max_value_depth allows go in and come back out, whatever the message around them adds.</summary>
[Collection(DeepValuesCollection.Name)]
public sealed class DeepValueTests(DeepValuesFixture worker)
{
    private const int Depth = KvJsonDepth.MaxValue;

    /// <summary>A reply read with room for its nesting, which System.Text.Json's default of 64 does not have.</summary>
    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 1024 });
        return document.RootElement.Clone();
    }

    [Fact]
    public async Task A_value_at_the_highest_max_value_depth_is_stored_and_read_back_by_kv_get_and_kv_get_many()
    {
        var ns = "deep-" + Guid.NewGuid().ToString("N");
        var value = Parse(NestedJson.Arrays(Depth, "1"));
        await using var client = await worker.RawClientAsync();

        var (set, _) = await client.CallWithPropertiesAsync(KvOperations.Set.Queue, Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"deep","value":{{NestedJson.Arrays(Depth, "1")}}}"""));
        var (get, _) = await client.CallWithPropertiesAsync(KvOperations.Get.Queue, Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"deep"}"""));
        var (many, _) = await client.CallWithPropertiesAsync(KvOperations.GetMany.Queue, Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","keys":["deep"]}"""));
        var (tooDeep, _) = await client.CallWithPropertiesAsync(KvOperations.Set.Queue, Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"deeper","value":{{NestedJson.Arrays(Depth + 1, "1")}}}"""));

        Assert.Equal(1, Parse(set).GetProperty("version").GetInt64());
        Assert.True(JsonElement.DeepEquals(value, Parse(get).GetProperty("value")), get);
        Assert.True(JsonElement.DeepEquals(value, Parse(many).GetProperty("entries")[0].GetProperty("value")), many);
        Assert.Equal(KvErrorCodes.ValueSerializationError, Parse(tooDeep).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task The_client_reads_back_and_sends_a_value_at_the_highest_max_value_depth()
    {
        var ns = "deep-client-" + Guid.NewGuid().ToString("N");
        var value = Parse(NestedJson.Arrays(Depth, "1"));
        await using (var raw = await worker.RawClientAsync())
            await raw.CallWithPropertiesAsync(KvOperations.Set.Queue, Encoding.UTF8.GetBytes($$"""{"namespace":"{{ns}}","key":"stored","value":{{NestedJson.Arrays(Depth, "1")}}}"""));
        await using var client = await KvWorker.Client.KvClient.ConnectAsync(worker.AmqpUri);

        var get = await client.GetAsync(new KvGet { Namespace = ns, Key = "stored" });
        var many = await client.GetManyAsync(new KvGetMany { Namespace = ns, Keys = ["stored"] });
        var json = await client.CallJsonAsync(KvOperations.GetMany, new KvGetMany { Namespace = ns, Keys = ["stored"] });
        var set = await client.SetAsync(new KvSet { Namespace = ns, Key = "sent", Value = value });
        var sent = await client.GetAsync(new KvGet { Namespace = ns, Key = "sent" });

        Assert.True(JsonElement.DeepEquals(value, get.Value!.Value));
        Assert.True(JsonElement.DeepEquals(value, many.Entries[0].Value!.Value));
        Assert.True(JsonElement.DeepEquals(value, json.GetProperty("entries")[0].GetProperty("value")));
        Assert.Equal(2, set.Version);
        Assert.True(JsonElement.DeepEquals(value, sent.Value!.Value));
    }

    [Fact]
    public async Task A_masstransit_request_client_with_the_contracts_depth_sends_and_reads_back_a_value_at_the_highest_max_value_depth()
    {
        var ns = "deep-mt-" + Guid.NewGuid().ToString("N");
        var value = Parse(NestedJson.Arrays(Depth, "1"));
        // As the README says: MassTransit reads and writes with System.Text.Json, 64 levels unless told otherwise.
        var bus = await worker.StartClientBusAsync(rabbit => rabbit.ConfigureJsonSerializerOptions(json =>
        {
            json.MaxDepth = KvJsonDepth.MaxMessage;
            return json;
        }));
        try
        {
            var set = await bus.CreateRequestClient<KvSet>(new Uri($"queue:{KvOperations.Set.Queue}"))
                .GetResponse<KvSetResult, KvError>(new KvSet { Namespace = ns, Key = "deep", Value = value });
            var many = await bus.CreateRequestClient<KvGetMany>(new Uri($"queue:{KvOperations.GetMany.Queue}"))
                .GetResponse<KvGetManyResult, KvError>(new KvGetMany { Namespace = ns, Keys = ["deep"] });

            Assert.True(set.Is(out Response<KvSetResult>? stored), (set.Message as KvError)?.Error.Message);
            Assert.Equal(1, stored!.Message.Version);
            Assert.True(many.Is(out Response<KvGetManyResult>? read), (many.Message as KvError)?.Error.Message);
            Assert.True(JsonElement.DeepEquals(value, read!.Message.Entries[0].Value!.Value));
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    [Fact]
    public async Task Kv_sets_and_reads_back_a_value_at_the_highest_max_value_depth()
    {
        var ns = "deep-cli-" + Guid.NewGuid().ToString("N");

        var set = await KvWorker.Tests.Cli.KvCliProcess.RunAsync(worker.AmqpUri, "set", ns, "deep", NestedJson.Arrays(Depth, "1"));
        var many = await KvWorker.Tests.Cli.KvCliProcess.RunAsync(worker.AmqpUri, "mget", ns, "deep");

        Assert.True(set.ExitCode == 0, set.ToString());
        Assert.True(many.ExitCode == 0, many.ToString());
        Assert.Equal($"deep\t{NestedJson.Arrays(Depth, "1")}", many.Output.Trim());
    }
}
