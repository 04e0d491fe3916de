using System.Globalization;

namespace KvWorker.Adapters.Conformance;

/// <summary>The seeds a random test runs, so that a failure's seed can be replayed or a range searched.</summary>
public static class Seeds
{
    /// <summary>
    /// The seeds <paramref name="variable"/> names ("17", or "1-5000"), else <paramref name="first"/>
    /// to <paramref name="last"/>.
    /// </summary>
    public static IEnumerable<int> From(string variable, int first, int last)
    {
        var chosen = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrEmpty(chosen))
        {
            var bounds = chosen.Split('-', 2).Select(bound => int.Parse(bound, CultureInfo.InvariantCulture)).ToArray();
            (first, last) = (bounds[0], bounds[^1]);
        }
        return Enumerable.Range(first, last - first + 1);
    }
}
