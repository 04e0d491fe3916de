using Npgsql;

namespace KvWorker.Postgres;

/// <summary>
/// A deployment-wide interval kept in PostgreSQL (<c>kv_schedule</c>): whichever
/// replica moves a job's next run forward claims the current interval, so the job
/// is started once per interval however many replicas ask.
/// </summary>
public sealed class PurgeSchedule(NpgsqlDataSource dataSource)
{
    /// <summary>
    /// Runs <paramref name="start"/> when this caller claims the interval that has come due for
    /// <paramref name="job"/>, and says whether it did. A start that fails gives the interval back
    /// (and throws), so the next look of any replica starts it, not the next interval's. When giving
    /// it back fails too (the database away as well), both failures are thrown together.
    /// </summary>
    public async Task<bool> RunIfDueAsync(string job, TimeSpan interval, Func<CancellationToken, Task> start, CancellationToken cancellationToken)
    {
        if (!await TryClaimAsync(job, interval, cancellationToken)) return false;
        try
        {
            await start(cancellationToken);
            return true;
        }
        catch (Exception startFailed)
        {
            try
            {
                await ReleaseAsync(job, CancellationToken.None);
            }
            catch (Exception releaseFailed)
            {
                throw new AggregateException(
                    $"{startFailed.Message}; the interval could not be given back either, so the next interval's run starts it: {releaseFailed.Message}",
                    startFailed, releaseFailed);
            }
            throw;
        }
    }

    /// <summary>True when this caller claimed the interval that has come due for <paramref name="job"/>; the next one is due <paramref name="interval"/> from now.</summary>
    public async Task<bool> TryClaimAsync(string job, TimeSpan interval, CancellationToken cancellationToken)
    {
        // A competing replica waits on the row lock, then sees next_run_at in the future. A next run
        // more than two intervals off was set by a longer interval (the setting was shortened since):
        // it is claimed now, or the new interval would first wait out the old one, up to a day. Two,
        // not one: replicas claiming at once differ by their wait for the lock, well under an interval.
        const string sql = """
            INSERT INTO kv_schedule AS s (name, next_run_at) VALUES ($1, now() + $2 * interval '1 second')
            ON CONFLICT (name) DO UPDATE SET next_run_at = excluded.next_run_at
             WHERE s.next_run_at <= now() OR s.next_run_at > now() + 2 * $2 * interval '1 second'
            RETURNING true
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job });
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = interval.TotalSeconds });
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    /// <summary>Makes <paramref name="job"/> due again now: its claimed interval's run did not start.</summary>
    private async Task ReleaseAsync(string job, CancellationToken cancellationToken)
    {
        const string sql = "UPDATE kv_schedule SET next_run_at = now() WHERE name = $1";
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = job });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
