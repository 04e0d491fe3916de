using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>
/// A kv_list page costs O(limit) whatever the namespace's size, also under the generic
/// plan the worker's prepared statements reach after a few executions: the plan read
/// by EXPLAIN ANALYZE scans no row it then throws away.
/// </summary>
[Collection(DatabaseCollection.Name)]
public sealed class PostgresListPlanTests(DatabaseFixture db)
{
    private const int Keys = 5_000;

    [Fact]
    public async Task A_page_after_a_cursor_deep_in_a_namespace_reads_only_its_rows()
    {
        var scan = await ExplainGenericPlanAsync(bounded: false, prefix: "", cursor: "k004800", limit: 100);

        Assert.Equal(101, scan.RowsPassedOn); // limit + 1
        Assert.Equal(0, scan.RowsRemovedByFilter);
    }

    [Fact]
    public async Task A_prefix_page_stops_at_the_prefix_end()
    {
        // k001000 to k001099: 100 keys, a page of up to 1,000 asked for.
        var prefix = "k0010";
        var scan = await ExplainGenericPlanAsync(bounded: true, prefix, cursor: "", limit: 1000, prefixEnd: PostgresKvStoreAdapter.PrefixEnd(prefix));

        Assert.Equal(100, scan.RowsPassedOn);
        Assert.Equal(0, scan.RowsRemovedByFilter);
    }

    /// <summary>
    /// Fills a namespace of its own with <see cref="Keys"/> keys inside a transaction that is
    /// rolled back, and runs the adapter's list statement prepared, with the generic plan forced.
    /// </summary>
    private async Task<(long RowsPassedOn, long RowsRemovedByFilter)> ExplainGenericPlanAsync(
        bool bounded, string prefix, string cursor, int limit, string? prefixEnd = null)
    {
        var ns = "plan-" + Guid.NewGuid().ToString("N");
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var fill = new NpgsqlCommand("""
            INSERT INTO kv_entries (namespace, key, value, size_bytes, version)
            SELECT $1, 'k' || lpad(i::text, 6, '0'), '1', 1, 1 FROM generate_series(0, $2 - 1) AS i
            """, connection, transaction))
        {
            fill.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
            fill.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Keys });
            await fill.ExecuteNonQueryAsync();
        }
        await using (var generic = new NpgsqlCommand("SET LOCAL plan_cache_mode = force_generic_plan", connection, transaction))
            await generic.ExecuteNonQueryAsync();
        var types = bounded ? "text, text, text, int, text" : "text, text, text, int";
        await using (var prepare = new NpgsqlCommand($"PREPARE kv_list_page ({types}) AS {PostgresKvStoreAdapter.ListSql(bounded)}", connection, transaction))
            await prepare.ExecuteNonQueryAsync();

        // EXPLAIN EXECUTE takes no bind parameters: the arguments are quoted into it by format's %L.
        await using var quote = new NpgsqlCommand(
            "SELECT format('EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE kv_list_page (%L, %L, %L, %s' || CASE WHEN $5::text IS NULL THEN ')' ELSE ', %L)' END, $1::text, $2::text, $3::text, $4::int, $5::text)",
            connection, transaction);
        quote.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ns });
        quote.Parameters.Add(new NpgsqlParameter<string> { TypedValue = prefix });
        quote.Parameters.Add(new NpgsqlParameter<string> { TypedValue = cursor });
        quote.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit + 1 });
        quote.Parameters.Add(new NpgsqlParameter { Value = (object?)prefixEnd ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await using var explain = new NpgsqlCommand((string)(await quote.ExecuteScalarAsync())!, connection, transaction);
        var plan = JsonDocument.Parse((string)(await explain.ExecuteScalarAsync())!).RootElement[0].GetProperty("Plan");
        await transaction.RollbackAsync();

        // The rows the plan's scans read: those they passed on, and those they read and dropped.
        var scans = Nodes(plan).Where(node => !node.TryGetProperty("Plans", out _)).ToList();
        return (scans.Sum(node => node.GetProperty("Actual Rows").GetInt64()),
            scans.Sum(node => node.TryGetProperty("Rows Removed by Filter", out var removed) ? removed.GetInt64() : 0));
    }

    private static IEnumerable<JsonElement> Nodes(JsonElement node) =>
        node.TryGetProperty("Plans", out var children)
            ? children.EnumerateArray().SelectMany(Nodes).Prepend(node)
            : [node];
}
