using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>The deployment-wide purge schedule: one claim per interval, however many replicas ask.</summary>
[Collection(DatabaseCollection.Name)]
public sealed class PurgeScheduleTests(DatabaseFixture db)
{
    [Fact]
    public async Task Of_many_replicas_asking_at_once_exactly_one_claims_each_interval()
    {
        var job = "test-" + Guid.NewGuid().ToString("N");
        var interval = TimeSpan.FromSeconds(1.5);
        var replicas = Enumerable.Range(0, 8).Select(_ => new PurgeSchedule(db.DataSource)).ToList();

        Task<bool[]> AskAllAsync() => Task.WhenAll(replicas.Select(replica => Task.Run(() => replica.TryClaimAsync(job, interval, CancellationToken.None))));

        Assert.Single(await AskAllAsync(), claimed => claimed); // the first interval starts now
        Assert.DoesNotContain(true, await AskAllAsync());     // still within it
        await Task.Delay(interval + TimeSpan.FromMilliseconds(300));
        Assert.Single(await AskAllAsync(), claimed => claimed); // the next one
    }

    [Fact]
    public async Task A_shortened_interval_takes_effect_at_once_not_after_the_run_the_longer_one_scheduled()
    {
        var job = "test-" + Guid.NewGuid().ToString("N");
        var schedule = new PurgeSchedule(db.DataSource);
        // A deployment ran with a purge a day; the interval claimed now would next be due tomorrow.
        Assert.True(await schedule.TryClaimAsync(job, TimeSpan.FromDays(1), CancellationToken.None));

        // Restarted with a purge a minute, it claims now, and then keeps to the minute.
        Assert.True(await schedule.TryClaimAsync(job, TimeSpan.FromMinutes(1), CancellationToken.None));
        Assert.False(await schedule.TryClaimAsync(job, TimeSpan.FromMinutes(1), CancellationToken.None));
    }

    [Fact]
    public async Task A_run_that_fails_to_start_gives_its_interval_back_so_the_next_look_starts_it()
    {
        var job = "test-" + Guid.NewGuid().ToString("N");
        var schedule = new PurgeSchedule(db.DataSource);
        var interval = TimeSpan.FromMinutes(10);
        var started = 0;

        // The broker is away as the interval's run is sent.
        await Assert.ThrowsAsync<InvalidOperationException>(() => schedule.RunIfDueAsync(job, interval,
            _ => throw new InvalidOperationException("broker unreachable"), CancellationToken.None));
        // The next look, a few seconds later, starts it, and the interval is then taken.
        Assert.True(await schedule.RunIfDueAsync(job, interval, _ => { started++; return Task.CompletedTask; }, CancellationToken.None));
        Assert.False(await schedule.RunIfDueAsync(job, interval, _ => { started++; return Task.CompletedTask; }, CancellationToken.None));
        Assert.Equal(1, started);
    }

    [Fact]
    public async Task A_run_that_fails_to_start_and_cannot_give_its_interval_back_reports_both_failures()
    {
        var job = "test-" + Guid.NewGuid().ToString("N");
        var dataSource = NpgsqlDataSource.Create(db.ConnectionString);
        var schedule = new PurgeSchedule(dataSource);

        // The database goes away as the run's send fails: the interval stays taken.
        var failed = await Assert.ThrowsAsync<AggregateException>(() => schedule.RunIfDueAsync(job, TimeSpan.FromMinutes(10), async _ =>
        {
            await dataSource.DisposeAsync();
            throw new InvalidOperationException("broker unreachable");
        }, CancellationToken.None));

        Assert.Equal(2, failed.InnerExceptions.Count);
        Assert.Equal("broker unreachable", failed.InnerExceptions[0].Message);
        Assert.IsType<ObjectDisposedException>(failed.InnerExceptions[1]);
        Assert.StartsWith("broker unreachable; the interval could not be given back either", failed.Message);
        Assert.False(await new PurgeSchedule(db.DataSource).TryClaimAsync(job, TimeSpan.FromMinutes(10), CancellationToken.None));
    }
}
