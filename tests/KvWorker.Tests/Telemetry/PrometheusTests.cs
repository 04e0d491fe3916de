using System.Globalization;
using System.Text.RegularExpressions;
using KvWorker.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace KvWorker.Tests.Telemetry;

/// <summary><c>/metrics</c> on the health port, and the Grafana dashboard in <c>monitoring/</c> that reads it.</summary>
[Collection(WorkerCollection.Name)]
public sealed partial class PrometheusTests(WorkerFixture worker)
{
    private static readonly string Dashboard = Path.Combine(AppContext.BaseDirectory, "monitoring", "kvworker.json");

    /// <summary>Series that Prometheus makes itself for every target, rather than reading them from it.</summary>
    private static readonly string[] ScrapeSeries = ["up"];

    [Fact]
    public async Task Metrics_holds_every_metric_the_dashboard_queries_in_prometheus_text_format()
    {
        // A process of its own: MassTransit's meter belongs to the first host of a process and goes
        // with it, so a host built inside this test process may export no MassTransit metrics.
        var port = HealthTests.FreePort();
        using var process = WorkerProcess.Start(worker.WorkerSettings(new Dictionary<string, string?> { ["Health:Port"] = port.ToString(CultureInfo.InvariantCulture) }));
        var wanted = DashboardMetricNames().Except(ScrapeSeries).ToHashSet();
        Assert.NotEmpty(wanted);

        // Some metrics follow the replies: the outbox publisher's events, its backlog count.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        var scrape = "";
        string[] missing = [.. wanted];
        var deadline = DateTime.UtcNow.AddSeconds(60);
        do
        {
            // Another worker consumes the same queues: repeat the traffic until this one has had its share.
            await TrafficAsync();
            try
            {
                scrape = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
                missing = [.. wanted.Except(SampleNames(scrape))];
            }
            catch (HttpRequestException) when (!process.HasExited)
            {
                // Still starting.
            }
            if (missing.Length > 0) await Task.Delay(500);
        }
        while (missing.Length > 0 && !process.HasExited && DateTime.UtcNow < deadline);

        Assert.True(missing.Length == 0, $"/metrics lacks what the dashboard queries: {string.Join(", ", missing)}\n{scrape}\n{process.Output}");
        AssertParses(scrape);
    }

    [Fact]
    public async Task Metrics_is_served_where_the_health_endpoint_is_unless_switched_off()
    {
        // Resolving the meter provider starts its listener: on a free port.
        var port = HealthTests.FreePort().ToString(CultureInfo.InvariantCulture);
        using var on = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?> { ["Health:Port"] = port }));
        using var off = BrokerFixture.BuildWorker(worker.WorkerSettings(new Dictionary<string, string?>
        {
            ["Health:Port"] = port,
            [TelemetryExtensions.PrometheusKey] = "false",
        }));
        using var noHealth = BrokerFixture.BuildWorker(worker.WorkerSettings());

        Assert.NotNull(on.Services.GetService<MeterProvider>());
        Assert.Null(off.Services.GetService<MeterProvider>());
        Assert.Null(noHealth.Services.GetService<MeterProvider>());
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var scrape = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
        Assert.Equal(System.Net.HttpStatusCode.OK, scrape.StatusCode);
        Assert.StartsWith("text/plain", scrape.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
    }

    /// <summary>
    /// A request of each kind the dashboard shows: answers and errors, a quota rejection, a usage
    /// query, and a purge of an expired entry (which also publishes a KvEntriesExpired event from the outbox).
    /// </summary>
    private async Task TrafficAsync()
    {
        var ns = "prometheus-" + Guid.NewGuid().ToString("N");
        await using var client = await worker.RawClientAsync();
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "text", value = "not a number", ttl_seconds = 60 });
        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "text" });
        // Two over the quota: with the other worker, the kv_set queue's consumers take turns, and with two
        // kv_set a round (an even number) the over-quota one could go to the same worker every round.
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "big", value = new string('x', 1024 * 1024 + 1) });
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "bigger", value = new string('x', 1024 * 1024 + 2) });
        await client.CallAsync(KvOperations.Usage.Queue, new { @namespace = ns });
        await worker.Database.ExpireAsync(ns, "text");
        // Whichever purge removes the entry, this one or a scheduled one, answers a kv_purge request and records it.
        await client.CallAsync(KvOperations.Purge.Queue, new { @namespace = ns });
    }

    /// <summary>The metric names in the PromQL of every panel of the dashboard.</summary>
    private static IEnumerable<string> DashboardMetricNames()
    {
        var expressions = new List<string>();
        Collect(JsonDocument.Parse(File.ReadAllText(Dashboard)).RootElement);
        return expressions.SelectMany(MetricNames).Distinct();

        void Collect(JsonElement element)
        {
            if (element.ValueKind == JsonValueKind.Array)
                foreach (var item in element.EnumerateArray()) Collect(item);
            if (element.ValueKind != JsonValueKind.Object) return;
            foreach (var property in element.EnumerateObject())
            {
                if (property.Name == "expr") expressions.Add(property.Value.GetString()!);
                else Collect(property.Value);
            }
        }
    }

    /// <summary>
    /// The metric names one PromQL expression reads: what is left once strings, label matchers,
    /// ranges and grouping clauses are taken out, less functions (followed by a parenthesis) and keywords.
    /// </summary>
    private static IEnumerable<string> MetricNames(string expression) =>
        Identifier().Matches(NotMetricNames().Replace(expression, " "))
            .Select(match => match.Value)
            .Where(name => name is not ("and" or "or" or "unless" or "bool" or "offset"));

    [GeneratedRegex("""
        "[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)
        """)]
    private static partial Regex NotMetricNames();

    [GeneratedRegex(@"(?<![\w$.])[a-zA-Z_:][\w:]*\b(?!\s*\()")]
    private static partial Regex Identifier();

    /// <summary>The names of the samples in a scrape (a histogram's are its <c>_bucket</c>, <c>_sum</c> and <c>_count</c>).</summary>
    private static HashSet<string> SampleNames(string scrape) =>
        [.. scrape.Split('\n').Where(line => line.Length > 0 && line[0] != '#').Select(line => line[..line.IndexOfAny(['{', ' '])])];

    /// <summary>
    /// The text format: <c># HELP</c> and <c># TYPE</c> lines, and samples <c>name{label="value",...} value</c>,
    /// each of the family its last <c># TYPE</c> line declared.
    /// </summary>
    private static void AssertParses(string scrape)
    {
        string? family = null;
        foreach (var line in scrape.Split('\n').Where(line => line.Length > 0))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            var type = TypeLine().Match(line);
            if (type.Success)
            {
                family = type.Groups["name"].Value;
                continue;
            }
            var sample = SampleLine().Match(line);
            Assert.True(sample.Success, $"not a sample line: {line}");
            var name = sample.Groups["name"].Value;
            Assert.True(family is not null && (name == family || name == family + "_bucket" || name == family + "_sum" || name == family + "_count"),
                $"sample {name} is not of the family {family} its # TYPE line declared");
            var value = sample.Groups["value"].Value;
            Assert.True(value is "+Inf" or "-Inf" or "NaN" || double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
                $"not a number: {line}");
        }
    }

    [GeneratedRegex(@"^# TYPE (?<name>[a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$")]
    private static partial Regex TypeLine();

    [GeneratedRegex("""
        ^(?<name>[a-zA-Z_:][\w:]*)(\{([a-zA-Z_]\w*="([^"\\\n]|\\.)*")(,[a-zA-Z_]\w*="([^"\\\n]|\\.)*")*,?\})? (?<value>\S+)( -?\d+)?$
        """)]
    private static partial Regex SampleLine();
}
