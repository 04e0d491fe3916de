using KvWorker.Configuration;
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
        return new PostgresKvStoreAdapter(dataSource, options, new KvLimits { MaxIntegerDigits = MaxIntegerDigits });
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
