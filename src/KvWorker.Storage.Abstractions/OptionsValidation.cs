using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KvWorker.Storage;

public static class OptionsValidation
{
    /// <summary>
    /// Validates the options when the host starts, reporting every failure that
    /// <paramref name="failures"/> lists; each failure starts with the full key it is about.
    /// </summary>
    public static OptionsBuilder<T> ValidateEach<T>(this OptionsBuilder<T> builder, Func<T, IEnumerable<string>> failures)
        where T : class
    {
        builder.Services.AddSingleton<IValidateOptions<T>>(new FailureListValidator<T>(builder.Name, failures));
        return builder.ValidateOnStart();
    }

    /// <inheritdoc cref="ValidateEach{T}"/>
    public static OptionsBuilder<T> ValidateEach<T, TDependency>(
        this OptionsBuilder<T> builder, Func<T, TDependency, IEnumerable<string>> failures)
        where T : class where TDependency : notnull
    {
        builder.Services.AddSingleton<IValidateOptions<T>>(provider =>
            new FailureListValidator<T>(builder.Name, options => failures(options, provider.GetRequiredService<TDependency>())));
        return builder.ValidateOnStart();
    }

    /// <summary>
    /// Refuses at start-up any key of <paramref name="section"/> that no property of <typeparamref name="T"/>
    /// binds, for sections that are the worker's own: .NET's binder skips such a key without a word, so a
    /// misspelt one would leave its setting at the default.
    /// </summary>
    public static OptionsBuilder<T> RefuseUnknownKeys<T>(this OptionsBuilder<T> builder, string section) where T : class =>
        builder.ValidateEach<T, IConfiguration>((_, configuration) => UnknownKeys(configuration.GetSection(section), typeof(T)));

    /// <summary>
    /// A failure, starting with the full key, for each key of <paramref name="section"/> that no property
    /// of <paramref name="options"/> binds, and likewise within the sections of its nested options.
    /// <paramref name="otherSections"/> are keys of the section that other options bind, left to them.
    /// </summary>
    public static IEnumerable<string> UnknownKeys(IConfigurationSection section, Type options, params string[] otherSections)
    {
        var properties = options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(property => property.SetMethod is { IsPublic: true })
            .ToDictionary(property => property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name ?? property.Name,
                StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            if (otherSections.Contains(child.Key, StringComparer.OrdinalIgnoreCase)) continue;
            if (!properties.TryGetValue(child.Key, out var property))
                yield return $"{child.Path} is not a setting the worker reads ({section.Path} takes {string.Join(", ", properties.Keys.Concat(otherSections))})";
            else if (IsNestedOptions(property.PropertyType))
                foreach (var failure in UnknownKeys(child, property.PropertyType)) yield return failure;
        }
    }

    /// <summary>A class of settings of its own (PoolOptions, say), not a value, a list or a map.</summary>
    private static bool IsNestedOptions(Type type) =>
        type.IsClass && type != typeof(string) && !typeof(System.Collections.IEnumerable).IsAssignableFrom(type);

    /// <summary>
    /// What .NET's binder drops from a list setting without a word, as failures naming the key:
    /// the list written as a single value (<c>quota_thresholds: 0.5</c>), and each item that is
    /// not a number when <paramref name="numbers"/> (binding skips an item it cannot convert).
    /// </summary>
    public static IEnumerable<string> DroppedFromList(IConfigurationSection list, bool numbers = false)
    {
        if (list.Value is { Length: > 0 } single)
            yield return $"{list.Path} must be a list, not the single value '{single}'";
        if (!numbers) yield break;
        foreach (var item in list.GetChildren())
            if (!double.TryParse(item.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                yield return $"{item.Path} must be a number, not '{item.Value}'";
    }

    private sealed class FailureListValidator<T>(string name, Func<T, IEnumerable<string>> failures) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? optionsName, T options)
        {
            if (optionsName != name) return ValidateOptionsResult.Skip;
            var found = failures(options).ToList();
            return found.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(found);
        }
    }
}
