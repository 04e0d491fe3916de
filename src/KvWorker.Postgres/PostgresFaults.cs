using KvWorker.Storage;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>Turns PostgreSQL's transient faults into the adapter seam's <see cref="KvStoreUnavailableException"/>, which the worker retries.</summary>
public static class PostgresFaults
{
    /// <summary>
    /// Worth another try: every failure to reach a server (refused, lost or timed-out
    /// connections, an exhausted pool, and a multi-host URL that finds no host of the kind
    /// it asks for, as in the seconds of a failover), and the server errors that pass:
    /// a server shutting down (57P01, as a failover does to the old primary), serialization
    /// failures, deadlocks and the like, and a write refused as read-only (25006) because
    /// the connection reached a standby, such as a primary that a failover demoted.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        PostgresException postgres => postgres.IsTransient || postgres.SqlState == PostgresErrorCodes.ReadOnlySqlTransaction,
        NpgsqlException => true, // not sent by a server: reaching one failed
        _ => false,
    };

    /// <summary>
    /// A transient fault as the store unavailable; a request beyond one of PostgreSQL's own limits
    /// (54000: a namespace and key too long together for the entries' key index, under name limits
    /// configured above the defaults) as the caller's invalid request; anything else as it is.
    /// </summary>
    public static Exception Translate(Exception exception) => exception switch
    {
        _ when IsTransient(exception) => new KvStoreUnavailableException($"postgres unavailable: {exception.Message}", exception),
        PostgresException { SqlState: PostgresErrorCodes.ProgramLimitExceeded } beyond =>
            KvStoreException.InvalidRequest($"the request is more than PostgreSQL can store: {beyond.MessageText}"),
        _ => exception,
    };

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

/// <summary>
/// Under <c>require_synchronous_replication</c>, a write group on a server that does not wait for a
/// synchronous standby (its standby away, say, and the failover manager keeping the primary writable):
/// not acknowledged, as the next failover could lose it. An <see cref="NpgsqlException"/>, so it is
/// transient like any failure to reach a usable server: retried, then answered StoreUnavailableError.
/// </summary>
public sealed class NotReplicatedException(string message) : NpgsqlException(message);
