using KvWorker.Tests.Client;

namespace KvWorker.Tests.Cli;

/// <summary>The kv command against a stand-in for the worker, for replies the real worker never sends.</summary>
public sealed class KvCliStubTests(StubWorker stub) : IClassFixture<StubWorker>
{
    [Theory]
    [InlineData("get", "n", StubWorker.NotJson)]
    [InlineData("get", "n", StubWorker.NotJson, "--json")]
    public async Task A_reply_that_is_not_json_exits_3_with_one_line_saying_so(params string[] arguments)
    {
        var result = await KvCliProcess.RunAsync(stub.AmqpUri, arguments);

        Assert.True(result.ExitCode == 3, result.ToString());
        var line = Assert.Single(result.Errors.TrimEnd().Split('\n'));
        Assert.StartsWith("kv: the reply on kv_get is not JSON (", line);
        Assert.EndsWith("is another program consuming kv_get?", line);
        Assert.Equal("", result.Output);
    }
}
