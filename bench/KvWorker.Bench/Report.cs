using System.Globalization;
using System.Text;

namespace KvWorker.Bench;

/// <summary>The final report: headed sections of text lines and tables, rendered for a terminal or as Markdown.</summary>
public sealed class Report
{
    private readonly List<(string Heading, List<object> Blocks)> _sections = [];

    /// <summary>Starts a section; what is added next goes into it.</summary>
    public void Section(string heading) => _sections.Add((heading, []));

    /// <summary>A line of text (a bullet in Markdown when it starts with "- ").</summary>
    public void Line(string text) => _sections[^1].Blocks.Add(text);

    public void Add(Table table) => _sections[^1].Blocks.Add(table);

    public void Append(Report other) => _sections.AddRange(other._sections);

    public string ToText()
    {
        var text = new StringBuilder();
        foreach (var (heading, blocks) in _sections)
        {
            text.AppendLine().AppendLine(heading).AppendLine(new string('=', heading.Length));
            foreach (var block in blocks)
                text.Append(block is Table table ? table.ToText() : block + "\n");
        }
        return text.ToString();
    }

    public string ToMarkdown(string title, string introduction)
    {
        var markdown = new StringBuilder($"# {title}\n\n{introduction}\n");
        foreach (var (heading, blocks) in _sections)
        {
            markdown.Append(CultureInfo.InvariantCulture, $"\n## {heading}\n\n");
            var previousWasTable = false;
            foreach (var block in blocks)
            {
                if (block is Table table)
                {
                    markdown.Append('\n').Append(table.ToMarkdown());
                    previousWasTable = true;
                }
                else
                {
                    var line = (string)block;
                    // A blank line keeps a paragraph apart from a table or from bullets above it.
                    if (previousWasTable && line.Length > 0) markdown.Append('\n');
                    markdown.Append(line).Append('\n');
                    previousWasTable = false;
                }
            }
        }
        return markdown.ToString();
    }
}

/// <summary>A table with a title line; numbers are right-aligned in the terminal.</summary>
public sealed class Table(string title, params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Row(params string[] cells) => _rows.Add(cells);

    public string ToText()
    {
        var widths = headers.Select((header, i) => Math.Max(header.Length, _rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        string Render(string[] cells) => string.Join("  ", cells.Select((cell, i) => i == 0 ? cell.PadRight(widths[i]) : cell.PadLeft(widths[i]))).TrimEnd();
        var text = new StringBuilder().Append('\n').AppendLine(title).AppendLine(Render(headers))
            .AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var row in _rows) text.AppendLine(Render(row));
        return text.ToString();
    }

    public string ToMarkdown()
    {
        var markdown = new StringBuilder($"**{title}**\n\n")
            .Append("| ").AppendJoin(" | ", headers).Append(" |\n")
            .Append('|').AppendJoin('|', headers.Select((_, i) => i == 0 ? " --- " : " ---: ")).Append("|\n");
        foreach (var row in _rows) markdown.Append("| ").AppendJoin(" | ", row).Append(" |\n");
        return markdown.ToString();
    }
}

/// <summary>How figures are written in the report.</summary>
public static class Format
{
    public static string Rate(double perSecond) => perSecond.ToString("N0", CultureInfo.InvariantCulture);
    public static string Ms(double milliseconds) => milliseconds.ToString(milliseconds < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture);
    public static string Ratio(double worker, double baseline) => baseline > 0 ? (worker / baseline).ToString("0.00", CultureInfo.InvariantCulture) : "-";
    public static string Percent(double fraction) => fraction.ToString("0%", CultureInfo.InvariantCulture);
    public static string MiB(long bytes) => (bytes / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";
    public static string Seconds(double seconds) => seconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
}
