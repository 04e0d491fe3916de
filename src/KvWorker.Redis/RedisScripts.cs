using System.Reflection;

namespace KvWorker.Redis;

/// <summary>The adapter's Lua scripts (Scripts/*.lua), each with the shared parts it is appended to.</summary>
internal static class RedisScripts
{
    public static readonly string Get = OnNamespace("get.lua");
    public static readonly string List = OnNamespace("list.lua");
    public static readonly string Set = Mutation("set.lua");
    public static readonly string Delete = Mutation("delete.lua");
    public static readonly string Increment = Mutation("increment.lua");
    public static readonly string Touch = Mutation("touch.lua");
    public static readonly string Purge = OnNamespace("purge.lua");
    public static readonly string Claim = OnNamespace("claim.lua");
    public static readonly string Ack = OnNamespace("ack.lua");
    public static readonly string Due = Text("due.lua");
    public static readonly string Reserve = Text("reserve.lua");
    public static readonly string Bind = Text("bind.lua");
    public static readonly string Unbind = Text("unbind.lua");

    private static string OnNamespace(string name) => Text("namespace.lua") + Text(name);

    private static string Mutation(string name) => Text("namespace.lua") + Text("mutation.lua") + Text(name);

    private static string Text(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("KvWorker.Redis.Scripts." + name)
            ?? throw new InvalidOperationException($"script {name} is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
