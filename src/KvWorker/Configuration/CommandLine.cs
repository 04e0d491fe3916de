namespace KvWorker.Configuration;

/// <summary>The worker's command line: settings, which configuration reads, and words, which it skips.</summary>
public static class CommandLine
{
    /// <summary>
    /// The arguments that are not settings, in order: what the command-line configuration source skips
    /// without a word. A setting is <c>--Key=value</c>, <c>/Key=value</c>, <c>Key=value</c>, or
    /// <c>--Key value</c> and <c>/Key value</c>, whose value is the next argument.
    /// </summary>
    public static IEnumerable<string> Words(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i].Contains('=')) continue;
            if (args[i].StartsWith("--", StringComparison.Ordinal) || args[i].StartsWith('/')) { i++; continue; }
            yield return args[i];
        }
    }
}
