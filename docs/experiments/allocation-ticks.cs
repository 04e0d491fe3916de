// Where a .NET process allocates, from a trace of its GC allocation ticks (one about every 100 KB):
//   dotnet-trace collect -p PID --profile gc-verbose --duration 00:00:20 -o alloc.nettrace
//   dotnet run docs/experiments/allocation-ticks.cs -- alloc.nettrace
// Prints the sampled bytes by library, by type and by allocating function. The library and function
// are the first frame of the allocation's stack outside the runtime and System.*/Microsoft.*: the
// caller that asked, not the collection or task machinery it asked through.
#:package Microsoft.Diagnostics.Tracing.TraceEvent@3.1.21
#:property ManagePackageVersionsCentrally=false
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(args[0]));
var byLibrary = new Dictionary<string, long>();
var byType = new Dictionary<string, long>();
var byFunction = new Dictionary<string, long>();
long total = 0;
foreach (var traceEvent in log.Events)
{
    if (traceEvent is not GCAllocationTickTraceData tick) continue;
    var amount = tick.AllocationAmount64;
    total += amount;
    Add(byType, tick.TypeName ?? "?", amount);
    string? caller = null;
    for (var frame = traceEvent.CallStack(); frame is not null; frame = frame.Caller)
    {
        var module = frame.CodeAddress.ModuleName;
        if (module is "" || module.StartsWith("System.", StringComparison.Ordinal)
            || module.StartsWith("Microsoft.", StringComparison.Ordinal) || module.Contains("coreclr", StringComparison.Ordinal)) continue;
        Add(byLibrary, module, amount);
        caller = frame.CodeAddress.FullMethodName;
        break;
    }
    if (caller is null) Add(byLibrary, "(runtime and System.* only)", amount);
    Add(byFunction, caller ?? "?", amount);
}
Console.WriteLine($"{total / 1048576.0:0.0} MiB sampled");
Print("library", byLibrary, 15);
Print("type", byType, 30);
Print("allocating function", byFunction, 40);

static void Add(Dictionary<string, long> totals, string key, long amount) => totals[key] = totals.GetValueOrDefault(key) + amount;

void Print(string title, Dictionary<string, long> totals, int count)
{
    Console.WriteLine($"\nby {title}:");
    foreach (var (key, amount) in totals.OrderByDescending(pair => pair.Value).Take(count))
        Console.WriteLine($"{100.0 * amount / total,5:0.0}%  {(key.Length > 160 ? key[..160] : key)}");
}
