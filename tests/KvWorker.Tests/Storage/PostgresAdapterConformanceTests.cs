using KvWorker.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>
/// The adapter conformance suite against the built-in PostgreSQL adapter: the
/// collection's database for shared stores, a fresh database for each isolated one.
/// </summary>
[Collection(DatabaseCollection.Name)]
public sealed class PostgresAdapterConformanceTests(DatabaseFixture db) : KvStoreAdapterConformanceTests
{
    private readonly List<(string Name, NpgsqlDataSource DataSource)> _isolated = [];

    protected override async Task<IKvStoreAdapter> CreateAdapterAsync(AdapterSettings settings)
    {
        var dataSource = db.DataSource;
        if (settings.Isolated)
        {
            var name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
            dataSource = NpgsqlDataSource.Create(await TestServers.CreateDatabaseAsync(name));
            _isolated.Add((name, dataSource));
        }
        var options = new PostgresAdapterOptions { NamespaceQuotaBytes = settings.NamespaceQuotaBytes, GlobalQuotaBytes = settings.GlobalQuotaBytes };
        if (settings.PurgeBatchSize is { } batchSize) options.PurgeBatchSize = batchSize;
        return new PostgresKvStoreAdapter(dataSource, options, new KvLimits { MaxIntegerDigits = MaxIntegerDigits });
    }

    /// <summary>What the adapters queued in kv_outbox, published as the worker's outbox publisher does.</summary>
    protected override async Task PublishWaitingEventsAsync()
    {
        foreach (var dataSource in _isolated.Select(i => i.DataSource).Prepend(db.DataSource))
        {
            var outbox = new OutboxPublisher(dataSource, Events, Options.Create(new PostgresAdapterOptions()), NullLogger<OutboxPublisher>.Instance);
            while (await outbox.PublishBatchAsync(CancellationToken.None) > 0)
            {
            }
        }
    }

    public override async Task DisposeAsync()
    {
        foreach (var (name, dataSource) in _isolated)
        {
            await dataSource.DisposeAsync();
            await TestServers.DropDatabaseAsync(name);
        }
    }
}
