using System.Globalization;

namespace KvWorker.Storage;

/// <summary>One server address of a list as operators write them: <c>host</c>, <c>host:port</c>, <c>[v6]</c> or <c>[v6]:port</c>.</summary>
public static class HostPort
{
    /// <summary>The host (without brackets) and port of <paramref name="text"/>; <paramref name="defaultPort"/> when it names none.</summary>
    /// <exception cref="FormatException">No host, or a port that is not a number from 1 to 65535; the message says which.</exception>
    public static (string Host, int Port) Parse(string text, int defaultPort)
    {
        var bracketEnd = text.IndexOf("]:", StringComparison.Ordinal);
        var portAt = text.StartsWith('[') ? (bracketEnd < 0 ? -1 : bracketEnd + 1) : text.LastIndexOf(':');
        var (host, port) = portAt < 0 ? (text, "") : (text[..portAt], text[(portAt + 1)..]);
        host = host.Trim('[', ']');
        if (host.Length == 0) throw new FormatException($"no host in '{text}'");
        if (port.Length == 0) return (host, defaultPort);
        return int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number is > 0 and <= ushort.MaxValue
            ? (host, number)
            : throw new FormatException($"port '{port}' of host '{host}' is not a port number");
    }
}
