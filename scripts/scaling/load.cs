#:project ../../src/KvWorker.Client/KvWorker.Client.csproj
#:property PublishAot=false
// The load of scripts/scaling.sh: keeps IN_FLIGHT requests (kv_increment or kv_get, each
// in-flight slot on a namespace of its own) going over one KvClient connection per broker
// URL, and prints the requests answered per second over SECONDS after a 3 s warm-up, and
// the requests answered in all (warm-up included).
//   dotnet run scripts/scaling/load.cs -- URL[,URL...] SECONDS IN_FLIGHT increment|get
using System.Diagnostics;
using System.Globalization;
using KvWorker.Client;
using KvWorker.Contracts;

var urls = args[0].Split(',');
var seconds = double.Parse(args[1], CultureInfo.InvariantCulture);
var inFlight = int.Parse(args[2], CultureInfo.InvariantCulture);
var increment = args[3] == "increment";
var clients = await Task.WhenAll(urls.Select(url => KvClient.ConnectAsync(new Uri(url))));
var run = Guid.NewGuid().ToString("N")[..8];
var warmUp = TimeSpan.FromSeconds(3);
var clock = Stopwatch.StartNew();
var stopAt = warmUp + TimeSpan.FromSeconds(seconds);
long answered = 0;

async Task SlotAsync(int slot)
{
    var client = clients[slot % clients.Length];
    var ns = $"load-{run}-{slot}";
    while (clock.Elapsed < stopAt)
    {
        if (increment) await client.IncrementAsync(new KvIncrement { Namespace = ns, Key = "c" });
        else await client.GetAsync(new KvGet { Namespace = ns, Key = "c" });
        Interlocked.Increment(ref answered);
    }
}

var slots = Enumerable.Range(0, inFlight).Select(SlotAsync).ToList();
await Task.Delay(warmUp);
var (startCount, startTime) = (Interlocked.Read(ref answered), clock.Elapsed);
await Task.Delay(stopAt - clock.Elapsed);
var (endCount, endTime) = (Interlocked.Read(ref answered), clock.Elapsed);
await Task.WhenAll(slots);
foreach (var client in clients) await client.DisposeAsync();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(endCount - startCount) / (endTime - startTime).TotalSeconds:F0} {Interlocked.Read(ref answered)}"));
