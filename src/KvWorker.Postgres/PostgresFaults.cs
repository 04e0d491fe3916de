using KvWorker.Storage;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>Turns PostgreSQL's transient faults into the adapter seam's <see cref="KvStoreUnavailableException"/>, which the worker retries.</summary>
public static class PostgresFaults
{
    /// <summary>Lost or refused connections, pool time-outs, serialization failures and deadlocks: worth another try.</summary>
    public static Exception Translate(Exception exception) => exception is NpgsqlException { IsTransient: true } npgsql
        ? new KvStoreUnavailableException($"postgres unavailable: {npgsql.Message}", npgsql)
        : exception;

    /// <summary>Runs <paramref name="operation"/>, translating its transient faults.</summary>
    public static async Task<T> RunAsync<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (NpgsqlException ex) when (ex.IsTransient)
        {
            throw Translate(ex);
        }
    }
}
