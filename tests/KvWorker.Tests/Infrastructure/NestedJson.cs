namespace KvWorker.Tests.Infrastructure;

/// <summary>JSON nested as deep as a test of the depth limits needs.</summary>
public static class NestedJson
{
    /// <summary><paramref name="depth"/> arrays, each inside the one before, around <paramref name="innermost"/> (by default the last is empty).</summary>
    public static string Arrays(int depth, string innermost = "") => new string('[', depth) + innermost + new string(']', depth);
}
