using KvWorker.Contracts;
using System.Text;

namespace KvWorker.Bench;

/// <summary>The four tool operations, in the order a round measures them (a set fills the keys the get then reads).</summary>
public enum Operation { Set, Get, Increment, Delete }

/// <summary>One request of the load: which operation on which entry.</summary>
public readonly record struct Request(Operation Operation, string Namespace, string Key);

/// <summary>Something that answers requests: the worker or echo service through RabbitMQ, or PostgreSQL directly.</summary>
public interface ILoadTarget
{
    string Name { get; }

    /// <summary>Runs one request to completion; returns the error it was answered with, or null.</summary>
    Task<string?> CallAsync(Request request, CancellationToken cancellationToken);
}

/// <summary>What the requests look like: namespaces, keys, values and bodies.</summary>
public static class Workload
{
    public static readonly Operation[] Operations = Enum.GetValues<Operation>();

    /// <summary>The value every kv_set writes (and every prefilled entry holds): a small JSON object, compact.</summary>
    public const string SetValue = """{"agent":"bench","step":42,"tags":["plan","act"],"done":false}""";

    /// <summary>Keys each namespace of the main table cycles through.</summary>
    public const int KeysPerNamespace = 1000;

    public static string Queue(Operation operation) => operation switch
    {
        Operation.Get => KvOperations.Get.Queue,
        Operation.Set => KvOperations.Set.Queue,
        Operation.Delete => KvOperations.Delete.Queue,
        Operation.Increment => KvOperations.Increment.Queue,
        _ => throw new ArgumentOutOfRangeException(nameof(operation)),
    };

    /// <summary>
    /// Each request slot in flight acts as one agent with a namespace of its own:
    /// counters are <c>c0, c1, ...</c>, other entries <c>k0, k1, ...</c>.
    /// </summary>
    public static Request LaneRequest(Operation operation, string target, int lane, long sequence) =>
        new(operation, LaneNamespace(target, lane), KeyOf(operation, sequence % KeysPerNamespace));

    public static string LaneNamespace(string target, int lane) => $"{target}-lane{lane}";

    public static string KeyPrefix(Operation operation) => operation == Operation.Increment ? "c" : "k";

    public static string KeyOf(Operation operation, long index) => KeyPrefix(operation) + index;

    /// <summary>All four operations in turn, on the lane's namespace.</summary>
    public static Request MixedRequest(string target, int lane, long sequence) =>
        LaneRequest(Operations[sequence % Operations.Length], target, lane, sequence / Operations.Length);

    public static byte[] RequestBody(Request request)
    {
        var names = $"\"namespace\":\"{request.Namespace}\",\"key\":\"{request.Key}\"";
        var json = request.Operation switch
        {
            Operation.Set => $"{{{names},\"value\":{SetValue}}}",
            Operation.Increment => $"{{{names},\"delta\":1}}",
            _ => $"{{{names}}}",
        };
        return Encoding.UTF8.GetBytes(json);
    }
}
