namespace KvWorker.Postgres;

/// <summary>Whether PostgreSQL's commits wait for a synchronous standby, as <c>require_synchronous_replication</c> asks.</summary>
internal static class SynchronousReplication
{
    /// <summary>One row: <c>synchronous_standby_names</c>, <c>synchronous_commit</c>.</summary>
    public const string SettingsSql = "SELECT current_setting('synchronous_standby_names'), current_setting('synchronous_commit')";

    /// <summary>Null when commits wait for a standby; else the settings that keep them from it, as an operator reads them.</summary>
    public static string? Lacking(string standbys, string synchronousCommit) =>
        standbys != "" && synchronousCommit is "on" or "remote_write" or "remote_apply"
            ? null
            : $"synchronous_standby_names '{standbys}', synchronous_commit {synchronousCommit}";
}
