using KvWorker.Contracts;
using ScottPlot;

namespace KvWorker.Bench;

/// <summary>The operation table drawn as bar charts (PNG, ScottPlot), so the ratios show at a glance.</summary>
public static class Plots
{
    /// <summary>Draws throughput, latency and the CPU split at <paramref name="inFlight"/> as <paramref name="prefix"/>-*.png; returns the files written.</summary>
    public static List<string> Draw(string prefix, int inFlight, KvOperation[] operations, TableScenario table, Target rawEcho, Target echo, Target worker, Target postgres)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(prefix)!);
        (string Label, Func<KvOperation, Stats> Stats)[] throughput =
        [
            ("raw echo", op => table.Median(op, inFlight, Layout.Spread, rawEcho)),
            ("echo", op => table.Median(op, inFlight, Layout.Spread, echo)),
            ("worker, namespace per lane", op => table.Median(op, inFlight, Layout.Spread, worker)),
            ("worker, one namespace", op => table.Median(op, inFlight, Layout.Hot, worker)),
            ("PostgreSQL, commit per operation", op => table.Median(op, inFlight, Layout.Spread, postgres)),
        ];
        var files = new List<string>
        {
            Grouped($"{prefix}-throughput.png", $"Requests per second, {inFlight} in flight", "requests per second",
                operations, throughput.Select(series => (series.Label, (Func<KvOperation, double>)(op => series.Stats(op).RequestsPerSecond))).ToArray()),
            Grouped($"{prefix}-latency.png", $"Latency, {inFlight} in flight (ms)", "milliseconds", operations,
            [
                ("echo p50", op => throughput[1].Stats(op).P50Ms), ("echo p99", op => throughput[1].Stats(op).P99Ms),
                ("worker p50", op => throughput[2].Stats(op).P50Ms), ("worker p99", op => throughput[2].Stats(op).P99Ms),
                ("worker, one namespace, p99", op => throughput[3].Stats(op).P99Ms),
            ]),
        };

        // CPU: a stacked bar per target and operation.
        (string Label, Func<CpuPerRequest, double> Part)[] parts =
            [("PostgreSQL", c => c.Postgres), ("RabbitMQ", c => c.RabbitMq), ("service", c => c.Service), ("load generator", c => c.LoadGenerator)];
        var stacked = throughput.Where((_, i) => i != 0).ToArray();
        var plot = new Plot();
        var bars = new List<Bar>();
        var ticks = new List<(double, string)>();
        var position = 0.0;
        foreach (var operation in operations)
        {
            foreach (var (label, stats) in stacked)
            {
                if (stats(operation).Cpu is not { } cpu) continue;
                var bottom = 0.0;
                for (var p = 0; p < parts.Length; p++)
                {
                    var value = parts[p].Part(cpu);
                    bars.Add(new Bar { Position = position, ValueBase = bottom, Value = bottom + value, FillColor = Color(p) });
                    bottom += value;
                }
                ticks.Add((position, $"{operation.Name}\n{Short(label)}"));
                position++;
            }
            position += 0.5;
        }
        plot.Add.Bars(bars);
        Finish(plot, $"CPU per request by process, {inFlight} in flight (µs)", "microseconds", ticks,
            parts.Select((part, p) => (part.Label, p)));
        var cpuFile = $"{prefix}-cpu.png";
        plot.SavePng(cpuFile, 1400, 600);
        files.Add(cpuFile);
        return files;
    }

    private static string Grouped(string file, string title, string unit, KvOperation[] operations, (string Label, Func<KvOperation, double> Value)[] series)
    {
        var plot = new Plot();
        var bars = new List<Bar>();
        var ticks = new List<(double, string)>();
        for (var o = 0; o < operations.Length; o++)
        {
            var group = o * (series.Length + 1);
            for (var s = 0; s < series.Length; s++)
                bars.Add(new Bar { Position = group + s, Value = series[s].Value(operations[o]), FillColor = Color(s) });
            ticks.Add((group + (series.Length - 1) / 2.0, operations[o].Name));
        }
        plot.Add.Bars(bars);
        Finish(plot, title, unit, ticks, series.Select((s, i) => (s.Label, i)));
        plot.SavePng(file, 1200, 550);
        return file;
    }

    private static void Finish(Plot plot, string title, string unit, List<(double Position, string Label)> ticks, IEnumerable<(string Label, int Color)> legend)
    {
        plot.Title(title);
        plot.YLabel(unit);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            ticks.Select(t => t.Position).ToArray(), ticks.Select(t => t.Label).ToArray());
        plot.Axes.Margins(bottom: 0);
        foreach (var (label, color) in legend)
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = label, FillColor = Color(color) });
        plot.Legend.IsVisible = true;
        plot.Legend.Alignment = Alignment.UpperRight;
    }

    private static string Short(string label) => label.Replace("PostgreSQL, commit per operation", "PostgreSQL", StringComparison.Ordinal)
        .Replace("worker, namespace per lane", "worker", StringComparison.Ordinal).Replace("worker, one namespace", "worker, 1 ns", StringComparison.Ordinal);

    private static ScottPlot.Color Color(int index) => new ScottPlot.Palettes.Category10().GetColor(index);
}
