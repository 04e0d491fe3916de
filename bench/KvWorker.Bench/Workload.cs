using System.Text;
using KvWorker.Contracts;

namespace KvWorker.Bench;

/// <summary>Where the lanes' entries live: a namespace per lane (agents apart), or one namespace for all lanes (agents sharing state).</summary>
public enum Layout { Spread, Hot }

/// <summary>One request of the load: which operation on which entry.</summary>
public readonly record struct Request(KvOperation Operation, string Namespace, string Key);

/// <summary>Something that answers requests: the worker or an echo service through RabbitMQ, or PostgreSQL directly.</summary>
public interface ILoadTarget
{
    string Name { get; }

    /// <summary>Runs one request to completion; returns the error it was answered with, or null.</summary>
    Task<string?> CallAsync(Request request, CancellationToken cancellationToken);
}

/// <summary>What the requests look like: operations, namespaces, keys, values and bodies.</summary>
public static class Workload
{
    /// <summary>The four tool operations, in the order a round measures them (a set fills the keys the get then reads).</summary>
    public static readonly KvOperation[] Operations = [KvOperations.Set, KvOperations.Get, KvOperations.Increment, KvOperations.Delete];

    /// <summary>The value every kv_set writes (and every prefilled entry holds): a small JSON object, compact.</summary>
    public const string SetValue = """{"agent":"bench","step":42,"tags":["plan","act"],"done":false}""";

    /// <summary>Keys each lane cycles through.</summary>
    public const int KeysPerLane = 1000;

    /// <summary>
    /// Entries a kv_delete cell's lanes start with, together: a delete removes what it finds, so at few requests in
    /// flight a lane cycling over <see cref="KeysPerLane"/> keys came back to keys it had removed (34-67% of the
    /// deletes at 1 in flight), and a delete that finds nothing is cheaper than one that removes an entry.
    /// </summary>
    public const int DeleteEntriesPerCell = 64 * KeysPerLane;

    /// <summary>Keys each lane of a cell cycles through: <see cref="KeysPerLane"/>, more for kv_delete at fewer than 64 in flight.</summary>
    public static int KeysPerLaneOf(KvOperation operation, int inFlight) =>
        operation == KvOperations.Delete ? Math.Max(KeysPerLane, DeleteEntriesPerCell / inFlight) : KeysPerLane;

    /// <summary>
    /// Each request slot in flight acts as one agent, cycling over keys of its own: in a
    /// namespace of its own (<see cref="Layout.Spread"/>) or in the one namespace all lanes
    /// share (<see cref="Layout.Hot"/>). Counters are <c>c…</c>, other entries <c>k…</c>.
    /// </summary>
    public static Request LaneRequest(
        KvOperation operation, string target, int lane, long sequence, Layout layout = Layout.Spread, int keysPerLane = KeysPerLane) =>
        layout == Layout.Spread
            ? new(operation, LaneNamespace(target, lane), KeyOf(operation, sequence % keysPerLane))
            : new(operation, HotNamespace(target), KeyOf(operation, lane * keysPerLane + sequence % keysPerLane));

    public static string LaneNamespace(string target, int lane) => $"{target}-lane{lane}";

    public static string HotNamespace(string target) => $"{target}-hot";

    public static string KeyPrefix(KvOperation operation) => operation == KvOperations.Increment ? "c" : "k";

    public static string KeyOf(KvOperation operation, long index) => KeyPrefix(operation) + index;

    /// <summary>All four operations in turn, on the lane's namespace.</summary>
    public static Request MixedRequest(string target, int lane, long sequence) =>
        LaneRequest(Operations[sequence % Operations.Length], target, lane, sequence / Operations.Length);

    /// <summary>
    /// The JSON body of a request. kv_list asks for a page of 100 keys after the key (the first page for an empty key);
    /// kv_get_many reads 50 entries and 50 counters numbered from the key's number on.
    /// </summary>
    public static byte[] RequestBody(Request request)
    {
        var ns = $"\"namespace\":\"{request.Namespace}\"";
        var names = $"{ns},\"key\":\"{request.Key}\"";
        var json = request.Operation.Name switch
        {
            "kv_set" => $"{{{names},\"value\":{SetValue}}}",
            "kv_increment" => $"{{{names},\"delta\":1}}",
            "kv_list" => request.Key.Length == 0 ? $"{{{ns},\"limit\":100}}" : $"{{{ns},\"limit\":100,\"cursor\":\"{Storage.ListCursor.Encode(request.Key)}\"}}",
            "kv_get_many" => $"{{{ns},\"keys\":[{string.Join(",", GetManyKeys(request.Key).Select(key => $"\"{key}\""))}]}}",
            _ => $"{{{names}}}",
        };
        return Encoding.UTF8.GetBytes(json);
    }

    /// <summary>The keys one kv_get_many reads: 50 entries and 50 counters, numbered from <paramref name="first"/>'s number on.</summary>
    /// <param name="first">An entry's key, as <see cref="KeyOf"/> makes it for kv_set.</param>
    public static IEnumerable<string> GetManyKeys(string first)
    {
        var start = long.Parse(first[KeyPrefix(KvOperations.Set).Length..], System.Globalization.CultureInfo.InvariantCulture);
        return Enumerable.Range(0, GetManyKeyCount / 2)
            .SelectMany(i => new[] { KeyOf(KvOperations.Set, start + i), KeyOf(KvOperations.Increment, start + i) });
    }

    /// <summary>How many keys one kv_get_many reads.</summary>
    public const int GetManyKeyCount = 100;
}
