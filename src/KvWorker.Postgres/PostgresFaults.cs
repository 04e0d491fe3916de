using KvWorker.Storage;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>Turns PostgreSQL's transient faults into the adapter seam's <see cref="KvStoreUnavailableException"/>, which the worker retries.</summary>
public static class PostgresFaults
{
    /// <summary>
    /// Lost or refused connections, a server shutting down (57P01, as a failover does to
    /// the old primary), pool time-outs, serialization failures and deadlocks: worth another
    /// try. So is a write refused as read-only (25006): the connection reached a standby,
    /// such as a primary a failover demoted, and the next one finds the new primary.
    /// </summary>
    public static bool IsTransient(Exception exception) =>
        exception is NpgsqlException { IsTransient: true } or PostgresException { SqlState: PostgresErrorCodes.ReadOnlySqlTransaction };

    public static Exception Translate(Exception exception) => IsTransient(exception)
        ? new KvStoreUnavailableException($"postgres unavailable: {exception.Message}", exception)
        : exception;

    /// <summary>Runs <paramref name="operation"/>, translating its transient faults.</summary>
    public static async Task<T> RunAsync<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (NpgsqlException ex) when (IsTransient(ex))
        {
            throw Translate(ex);
        }
    }
}
