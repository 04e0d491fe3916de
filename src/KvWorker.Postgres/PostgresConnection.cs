using KvWorker.Storage;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>Turns the postgres adapter settings into an Npgsql connection string.</summary>
public static class PostgresConnection
{
    public const string ConversationStoreKey = "ConnectionStrings:conversation_store";
    private const string UrlKey = PostgresAdapterOptions.Section + ":url";
    private const int DefaultHostRecheckSeconds = 10; // Npgsql's

    /// <summary>
    /// The connection string: the conversation store's when
    /// <c>reuse_conversation_store</c> is on and one is configured, else <c>url</c>.
    /// Throws <see cref="InvalidOperationException"/> naming the key at fault.
    /// </summary>
    public static string Resolve(PostgresAdapterOptions options, IConfiguration configuration)
    {
        var conversationStore = configuration[ConversationStoreKey];
        var (key, url) = options.ReuseConversationStore && !string.IsNullOrWhiteSpace(conversationStore)
            ? (ConversationStoreKey, conversationStore)
            : (UrlKey, options.Url);
        if (string.IsNullOrWhiteSpace(url))
            throw new InvalidOperationException($"{UrlKey} is required (or set ATLAS_KV_STORE_URL)");

        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = ToConnectionStringBuilder(url);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or UriFormatException or KeyNotFoundException)
        {
            throw new InvalidOperationException($"{key} is not a PostgreSQL URL or Npgsql connection string: {ex.Message}", ex);
        }
        // The pool settings, unless the URL names its own (connect_timeout, as libpq reads it, or
        // Npgsql's keywords): a URL shared with other clients keeps its meaning here.
        if (!builder.ShouldSerialize("Minimum Pool Size")) builder.MinPoolSize = options.Pool.Size;
        if (!builder.ShouldSerialize("Maximum Pool Size")) builder.MaxPoolSize = options.Pool.Size + options.Pool.MaxOverflow;
        if (!builder.ShouldSerialize("Timeout")) builder.Timeout = (int)Math.Ceiling(options.Pool.Timeout);
        // The same few statements run all day: let Npgsql prepare them.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 32;
        // Every statement runs in a transaction of its own or the group's and leaves no session
        // state behind, so a connection returned to the pool needs no reset; the reset would
        // otherwise cost the server seven statements for every group (Npgsql still rolls back
        // a transaction left open).
        builder.NoResetOnClose = true;
        // With several hosts Npgsql remembers each one's role (primary, standby, down) for this
        // long; its 10 s default would keep a failover's new primary unused for up to 10 s.
        if (builder.Host?.Contains(',') == true && builder.HostRecheckSeconds == DefaultHostRecheckSeconds)
            builder.HostRecheckSeconds = 2;
        return builder.ConnectionString;
    }

    /// <summary>What is wrong with the connection settings, as failure messages naming the key: none when <see cref="Resolve"/> succeeds.</summary>
    public static IEnumerable<string> Problems(PostgresAdapterOptions options, IConfiguration configuration)
    {
        try
        {
            Resolve(options, configuration);
            return [];
        }
        catch (InvalidOperationException ex)
        {
            return [ex.Message];
        }
    }

    /// <summary>
    /// Accepts <c>postgresql[+driver]://user:pass@host:port/db?sslmode=...</c> or a connection string.
    /// A Unix socket is named as SQLAlchemy and libpq do: <c>user:pass@/db?host=/var/run/postgresql</c>,
    /// or the directory percent-encoded in the host's place (<c>%2Fvar%2Frun%2Fpostgresql</c>).
    /// As in libpq, the URL may name several hosts (<c>h1:5432,h2:5433</c>), tried in turn for one that
    /// suits <c>target_session_attrs</c> (e.g. <c>read-write</c>: the primary, wherever a failover put it).
    /// </summary>
    public static NpgsqlConnectionStringBuilder ToConnectionStringBuilder(string url)
    {
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
            return new NpgsqlConnectionStringBuilder(url);

        var scheme = url[..schemeEnd].Split('+')[0];
        if (scheme is not ("postgresql" or "postgres"))
            throw new FormatException($"unsupported scheme '{url[..schemeEnd]}'");

        // System.Uri cannot read an authority of several hosts: split the URL by hand.
        var rest = url[(schemeEnd + 3)..];
        var (beforeQuery, query) = Cut(rest, rest.IndexOf('?'));
        var (authority, path) = Cut(beforeQuery, beforeQuery.IndexOf('/'));
        var (userInfo, hosts) = authority.Contains('@') ? Cut(authority, authority.LastIndexOf('@')) : ("", authority);

        var builder = new NpgsqlConnectionStringBuilder { Database = Uri.UnescapeDataString(path) };
        // No host before the path: the host comes from the query, e.g. ?host=/var/run/postgresql (a Unix socket directory).
        var nodes = hosts.Length == 0 ? [] : hosts.Split(',').Select(ParseHost).ToList();
        if (nodes.Count == 1)
            (builder.Host, builder.Port) = (nodes[0].Host, nodes[0].Port);
        else if (nodes.Count > 1)
            builder.Host = string.Join(',', nodes.Select(node => $"{(node.Host.Contains(':') ? $"[{node.Host}]" : node.Host)}:{node.Port}"));
        if (userInfo.Length > 0)
        {
            var parts = userInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var name = Uri.UnescapeDataString(kv[0]);
            var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
            if (name == "sslmode") value = value.Replace("-", ""); // verify-full -> VerifyFull
            // libpq names that differ from Npgsql's (target_session_attrs' values are the same in both).
            builder[name switch
            {
                "sslmode" => "SSL Mode",
                "connect_timeout" => "Timeout",
                "application_name" => "Application Name",
                "target_session_attrs" => "Target Session Attributes",
                _ => name,
            }] = value;
        }
        if (builder.Database is "") builder.Database = null;
        if (string.IsNullOrEmpty(builder.Host))
            throw new FormatException("no host: name one after '@', or a Unix socket directory as ?host=/var/run/postgresql");
        return builder;
    }

    /// <summary>The text before and after the separator at <paramref name="at"/> (all of it before, when there is none).</summary>
    private static (string Before, string After) Cut(string text, int at) => at < 0 ? (text, "") : (text[..at], text[(at + 1)..]);

    /// <summary>One host of a URL's list, percent-decoded; the port is 5432 when not given.</summary>
    private static (string Host, int Port) ParseHost(string hostPort)
    {
        var (host, port) = HostPort.Parse(hostPort, 5432);
        return (Uri.UnescapeDataString(host), port);
    }
}
