using Microsoft.Extensions.Configuration;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>Turns the postgres adapter settings into an Npgsql connection string.</summary>
public static class PostgresConnection
{
    public const string ConversationStoreKey = "ConnectionStrings:conversation_store";
    private const string UrlKey = PostgresAdapterOptions.Section + ":url";

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
        builder.MinPoolSize = options.Pool.Size;
        builder.MaxPoolSize = options.Pool.Size + options.Pool.MaxOverflow;
        builder.Timeout = options.Pool.Timeout;
        // The same few statements run all day: let Npgsql prepare them.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 32;
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

    /// <summary>Accepts <c>postgresql[+driver]://user:pass@host:port/db?sslmode=...</c> or a connection string.</summary>
    public static NpgsqlConnectionStringBuilder ToConnectionStringBuilder(string url)
    {
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0)
            return new NpgsqlConnectionStringBuilder(url);

        var scheme = url[..schemeEnd].Split('+')[0];
        if (scheme is not ("postgresql" or "postgres"))
            throw new FormatException($"unsupported scheme '{url[..schemeEnd]}'");

        var uri = new Uri("postgresql" + url[(schemeEnd)..]);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host.Trim('[', ']'),
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            var name = Uri.UnescapeDataString(kv[0]);
            var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
            if (name == "sslmode") value = value.Replace("-", ""); // verify-full -> VerifyFull
            // libpq names that differ from Npgsql's.
            builder[name switch
            {
                "sslmode" => "SSL Mode",
                "connect_timeout" => "Timeout",
                "application_name" => "Application Name",
                _ => name,
            }] = value;
        }
        if (builder.Database is "") builder.Database = null;
        return builder;
    }
}
